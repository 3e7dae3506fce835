"""``python -m tether_threaded MODULE:APP``: the same as the ``tether-threaded`` command."""

import sys

from tether_threaded._cli import main

sys.exit(main())
