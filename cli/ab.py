"""``hydatis ab start|status|stop``: model A/B tests of the extender's models.

``start`` puts a challenger's model servers beside the champion's for a share of pods;
``status`` gives each arm's placement objective and the always-valid decision from a
cluster dataset; ``stop`` ends the test, promoting the challenger only when the test
shows it better. Settings go to a local file (``--settings-file``) or the extender's
ConfigMap and Deployment (``--kube-api``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hydatis.config import work_dir
from hydatis.errors import HydatisError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis ab`` (its handler is :func:`run`)."""
    p = sub.add_parser("ab", help="model A/B tests: start, status, stop", description=__doc__)
    p.add_argument("action", choices=("start", "status", "stop"))
    p.add_argument(
        "--state", type=Path, default=None, help="state file (default <work>/ab/test.json)"
    )
    where = p.add_argument_group("the extender's settings (one)")
    where.add_argument("--settings-file", type=Path, default=None, help="local settings YAML")
    where.add_argument("--kube-api", default=None, help="incluster, kubeconfig or an API URL")
    where.add_argument("--namespace", default="hydatis-system")
    where.add_argument("--configmap", default="hydatis-shim-config")
    where.add_argument("--config-key", default="shim.yaml")
    where.add_argument("--deployment", default="hydatis-shim")
    s = p.add_argument_group("start")
    s.add_argument("--agent-url", default="", help="the challenger's placement agent server")
    s.add_argument("--load-url", default="", help="the challenger's load predictor server")
    s.add_argument("--anomaly-url", default="", help="the challenger's anomaly detector server")
    s.add_argument("--percent", type=float, default=50.0, help="challenger share of pods")
    s.add_argument("--salt", default=None, help="arm hash salt (default: a fresh one)")
    s.add_argument("--confidence", type=float, default=0.95)
    s.add_argument("--window", type=float, default=1200.0, help="matched window (s)")
    s.add_argument("--horizon", type=float, default=1800.0, help="outcome horizon (s)")
    s.add_argument("--min-windows", type=int, default=8)
    s.add_argument("--max-windows", type=int, default=None, help="planned test length")
    a = p.add_argument_group("status / stop")
    a.add_argument("--observations", type=Path, default=None, help="a cluster dataset directory")
    a.add_argument(
        "--decision",
        choices=("auto", "promote", "keep"),
        default="auto",
        help="stop: auto = promote only on a promoting verdict, else keep",
    )
    p.set_defaults(func=run)
    return p


def _target(args: argparse.Namespace):
    from operations.ab import SettingsTarget

    if (args.settings_file is None) == (args.kube_api is None):
        raise HydatisError("give exactly one of --settings-file and --kube-api")
    if args.settings_file is not None:
        return SettingsTarget.file(args.settings_file), None
    from monitoring.remediation.kube import KubeCluster, connect

    cluster = KubeCluster(connect(args.kube_api))
    target = SettingsTarget.cluster(
        cluster,
        extender_namespace=args.namespace,
        extender_configmap=args.configmap,
        extender_config_key=args.config_key,
        extender_deployment=args.deployment,
    )
    return target, cluster


def _report(args: argparse.Namespace, state: Path):
    from operations.ab import observations_from_dataset, status

    if args.observations is None:
        raise HydatisError("--observations (a cluster dataset directory) is needed")
    return status(observations_from_dataset(args.observations), state)


def run(args: argparse.Namespace) -> int:
    """Run one A/B command; prints JSON; 0 on success, 2 on a refused or bad request."""
    import secrets

    from operations.ab import ABTest, start_test, stop_test

    state = args.state or work_dir() / "ab" / "test.json"
    cluster = None
    try:
        if args.action == "status":
            out = _report(args, state).as_dict()
        else:
            target, cluster = _target(args)
            if args.action == "start":
                urls = {"agent": args.agent_url, "load": args.load_url, "anomaly": args.anomaly_url}
                test = ABTest(
                    challenger={k: v for k, v in urls.items() if v},
                    percent=args.percent,
                    salt=args.salt or f"ab-{secrets.token_hex(4)}",
                    confidence=args.confidence,
                    window_s=args.window,
                    horizon_s=args.horizon,
                    min_windows=args.min_windows,
                    max_windows=args.max_windows,
                )
                out = start_test(target, test, state)
            else:
                report = (
                    _report(args, state) if args.observations or args.decision != "keep" else None
                )
                decision = args.decision
                if decision == "auto":
                    decision = "promote" if report.verdict.decision == "promote" else "keep"
                out = stop_test(target, state, decision=decision, report=report)
                if report is not None:
                    out["report"] = report.as_dict()
    except HydatisError as exc:
        print(f"hydatis ab {args.action}: {exc}", file=sys.stderr)
        return 2
    finally:
        if cluster is not None:
            cluster.close()
    print(json.dumps(out, indent=2, default=str))
    return 0
