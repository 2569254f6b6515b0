"""`python -m explorer`: the same as the `lstm-explorer` command (no sub-command opens the window)."""

import sys

from lstm_explorer import main

sys.exit(main())
