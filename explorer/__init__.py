"""LSTM Adder Explorer window: PySide6 + pyqtgraph views over the core trainer."""
