"""``python -m as3l_sklearn``: the same as the ``as3l`` command."""

import sys

from .cli import main

sys.exit(main())
