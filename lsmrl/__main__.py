"""``python -m lsmrl ...``: see :mod:`lsmrl.cli`."""

import sys

from lsmrl.cli import main

if __name__ == "__main__":
    sys.exit(main())
