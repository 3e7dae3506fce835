"""``python -m tether_server.conform URL``."""

import sys

from tether_server.conform import main

sys.exit(main())
