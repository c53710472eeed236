"""``python -m as3l_sklearn.cli``: the same as the ``as3l`` command."""

import sys

from . import main

sys.exit(main())
