"""LSTM Adder Explorer core: the binary-addition task and a NumPy LSTM that learns it. NumPy only."""

import os

# The matrices here are tiny (16 x 64 at the defaults): BLAS threads only add synchronisation cost, measured
# at 2-3x slower per matmul on a 2-core machine. Set before NumPy loads; an explicit setting still wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
