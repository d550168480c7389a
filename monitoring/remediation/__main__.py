"""``python -m monitoring.remediation``: the Alertmanager webhook service."""

import sys

from monitoring.remediation.server import main

sys.exit(main())
