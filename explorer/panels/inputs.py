"""Number fields that refuse an out-of-range value with a message instead of silently changing it.

Qt's spin boxes drop keystrokes that would leave their range (typing −5 where 0 is the least gives 5) and clamp on
Enter (100 where 32 is the most becomes 32). These let any number be typed; on Enter or leaving the field a value
out of range is refused: the field goes back to the value it had and sigRefused says why.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox, QWidget


def _check(box: QSpinBox | QDoubleSpinBox, text: str, pos: int, kind: type) -> tuple[QValidator.State, str, int]:
    body = text.removeprefix(box.prefix()).removesuffix(box.suffix()).strip()
    if body in ("", "-", "+", ".", "-.", "+."):
        return QValidator.State.Intermediate, text, pos
    if box.specialValueText() and body == box.specialValueText():
        return QValidator.State.Acceptable, text, pos
    try:
        value = kind(body)
    except ValueError:
        return QValidator.State.Invalid, text, pos
    inside = box.minimum() <= value <= box.maximum()
    return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), text, pos


class CheckedSpinBox(QSpinBox):
    """A QSpinBox that refuses (sigRefused) rather than changes an out-of-range whole number."""

    sigRefused = Signal(str)

    def __init__(self, what: str, low: int, high: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.setRange(low, high)
        self.setKeyboardTracking(False)

    def validate(self, text: str, pos: int) -> object:
        return _check(self, text, pos, int)

    def fixup(self, text: str) -> str:
        body = text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()
        self.sigRefused.emit(f"{self.what} must be a whole number from {self.minimum():,} to {self.maximum():,}; "
                             f"“{body}” was not applied (still {self.value():,})")
        return text


class CheckedDoubleSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox that refuses (sigRefused) rather than changes an out-of-range number."""

    sigRefused = Signal(str)

    def __init__(self, what: str, low: float, high: float, decimals: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.setDecimals(decimals)
        self.setRange(low, high)
        self.setKeyboardTracking(False)

    def validate(self, text: str, pos: int) -> object:
        return _check(self, text, pos, float)

    def fixup(self, text: str) -> str:
        body = text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()
        self.sigRefused.emit(f"{self.what} must be a number from {self.minimum():g} to {self.maximum():g}; "
                             f"“{body}” was not applied (still {self.value():g})")
        return text
