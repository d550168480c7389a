"""``python -m scheduler_shim --config FILE``: run the extender service."""

import sys

from scheduler_shim.server import main

sys.exit(main())
