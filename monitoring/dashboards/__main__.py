"""``python -m monitoring.dashboards [--out infra/grafana]``: write the dashboards' JSON
and the provisioning ConfigMaps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitoring.dashboards import write_infra


def main(argv: list[str] | None = None) -> int:
    """Write the files and name them on stdout."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.dashboards")
    parser.add_argument("--out", type=Path, default=Path("infra/grafana"))
    args = parser.parse_args(argv)
    for path in write_infra(args.out):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
