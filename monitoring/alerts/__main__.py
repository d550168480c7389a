"""``python -m monitoring.alerts render``: rewrite the rule file and Alertmanager
configuration (monitoring/alerts/rules/) and their ConfigMaps (infra/prometheus/) from
:mod:`monitoring.alerts.spec`."""

from __future__ import annotations

import argparse
import sys

from monitoring.alerts.render import write_all


def main(argv: list[str] | None = None) -> int:
    """Render the files; print where they went."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.alerts", description=__doc__)
    parser.add_argument("action", choices=["render"])
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    args = parser.parse_args(argv)
    for path in write_all(args.root):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
