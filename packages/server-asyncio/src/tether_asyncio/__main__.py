"""``python -m tether_asyncio`` is the ``tether`` command."""

import sys

from tether_asyncio._cli import main

sys.exit(main())
