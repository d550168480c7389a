"""The alert rules: the checked-in files equal the spec's render, every rule has a runbook
and a remediation action, and real ``promtool check rules`` / ``promtool test rules`` /
``amtool check-config`` pass (skipped, with the reason, when the tools are missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring.alerts.render import (
    ALERTMANAGER_FILE,
    RULES_DIR,
    RULES_FILE,
    alertmanager_config,
    dump_yaml,
    rendered_files,
    rule_groups,
)
from monitoring.alerts.spec import (
    ACTIONS,
    ALERTS,
    RECORDING_RULES,
    AlertRule,
    duration_s,
    runbook_path,
)

ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = ROOT / RULES_DIR
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; make services)"
)


@pytest.mark.parametrize(
    ("path", "text"), sorted(rendered_files().items()), ids=lambda v: str(v)[:40]
)
def test_checked_in_files_equal_the_spec(path: Path, text: str) -> None:
    assert (ROOT / path).read_text() == text, (
        f"{path} is stale: run `python -m monitoring.alerts render`"
    )


def test_configmaps_hold_the_same_rules() -> None:
    cm = yaml.safe_load((ROOT / "infra/prometheus/prometheus-rules.yaml").read_text())
    assert yaml.safe_load(cm["data"]["hydatis-rules.yaml"]) == rule_groups()
    am = yaml.safe_load((ROOT / "infra/prometheus/alertmanager-config.yaml").read_text())
    assert yaml.safe_load(am["data"]["alertmanager.yml"]) == alertmanager_config()


@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_every_alert_has_a_runbook_and_an_action(alert: AlertRule) -> None:
    page = ROOT / runbook_path(alert)
    assert page.is_file(), f"missing runbook {page}"
    assert page.read_text().startswith(f"# {alert.name}\n")
    assert alert.action in ACTIONS
    assert alert.severity in ("warning", "critical")
    assert duration_s(alert.for_) > 0


def test_every_alert_reads_recorded_or_raw_series_only_by_name() -> None:
    recorded = {r.record for r in RECORDING_RULES}
    assert all(r.startswith("hydatis:") for r in recorded)
    used = {name for a in ALERTS for name in recorded if name in a.expr}
    # the node CPU, fallback, model error and latency alerts read recorded series
    assert {
        "hydatis:node_cpu_utilisation:ratio_rate5m",
        "hydatis:extender_fallback:ratio_rate5m",
        "hydatis:extender_model_call_errors:ratio_rate5m",
        "hydatis:extender_model_call_seconds:p99_rate5m",
    } <= used


def test_runbook_annotation_and_labels_in_render() -> None:
    groups = rule_groups(runbook_base="https://example.org/repo/blob/main/")["groups"]
    alerts = {r["alert"]: r for r in groups[1]["rules"]}
    hot = alerts["HydatisNodeCPUHot"]
    assert hot["for"] == "30m"
    assert hot["labels"] == {"severity": "warning", "remediation": "cordon_drain"}
    assert hot["annotations"]["runbook_url"] == (
        "https://example.org/repo/blob/main/docs/runbooks/hydatis-node-cpu-hot.md"
    )
    assert alerts["HydatisLoadPredictorAccuracyLow"]["labels"]["model"] == (
        "hydatis-load-predictor"
    )


def test_render_with_a_short_for_and_interval() -> None:
    groups = rule_groups(for_="2s", interval="1s")["groups"]
    assert all(g["interval"] == "1s" for g in groups)
    assert {r["for"] for r in groups[1]["rules"]} == {"2s"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("90s", 90), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), ("0s", 0)],
    ids=["minutes", "seconds", "compound", "days", "milliseconds", "zero"],
)
def test_duration_s(text: str, seconds: float) -> None:
    assert duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "5", "5x", "m"], ids=["empty", "no-unit", "bad-unit", "no-number"]
)
def test_duration_s_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        duration_s(text)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("HydatisNodeCPUHot", "hydatis-node-cpu-hot"),
        ("HydatisPodPendingTooLong", "hydatis-pod-pending-too-long"),
        ("HydatisLoadPredictorAccuracyLow", "hydatis-load-predictor-accuracy-low"),
    ],
    ids=["acronym", "plain", "long"],
)
def test_slug(name: str, slug: str) -> None:
    assert AlertRule(name, "1", "1m", "warning", "", "", "notify").slug == slug


@needs_promtool
def test_promtool_check_rules() -> None:
    out = subprocess.run(
        [PROMTOOL, "check", "rules", str(ROOT / RULES_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    n_rules = len(RECORDING_RULES) + len(ALERTS)
    assert f"SUCCESS: {n_rules} rules found" in out.stdout


@needs_promtool
def test_promtool_test_rules_covers_every_alert() -> None:
    files = sorted(TESTS_DIR.glob("*.test.yaml"))
    assert files
    tested = set()
    for f in files:
        for case in yaml.safe_load(f.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", [])}
    assert tested == {a.name for a in ALERTS}, "every alert needs promtool unit tests"
    out = subprocess.run(
        [PROMTOOL, "test", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS_DIR,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_catches_a_broken_expectation(tmp_path: Path) -> None:
    """The rule tests can fail: a wrong expected value is reported."""
    src = (TESTS_DIR / "hydatis-rules.test.yaml").read_text()
    broken = src.replace("value: 0.495", "value: 0.4")
    assert broken != src
    test_file = tmp_path / "broken.test.yaml"
    test_file.write_text(broken.replace("  - hydatis-rules.yaml", f"  - {ROOT / RULES_FILE}"))
    out = subprocess.run(
        [PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "4.95E-01" in out.stdout + out.stderr


@pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool not installed (Debian package prometheus-alertmanager; make services)",
)
def test_amtool_check_config(tmp_path: Path) -> None:
    for config in (ROOT / ALERTMANAGER_FILE, tmp_path / "fast.yml"):
        if config.parent == tmp_path:
            fast = alertmanager_config(
                "http://127.0.0.1:1/v1/alerts",
                group_wait="1s",
                group_interval="1s",
                repeat_interval="3s",
            )
            config.write_text(dump_yaml(fast))
        out = subprocess.run(
            [AMTOOL, "check-config", str(config)], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stdout + out.stderr
