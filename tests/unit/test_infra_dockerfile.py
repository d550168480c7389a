"""Offline checks of the project image's Dockerfile and .dockerignore (no Docker needed):
a pinned base, a non-root runtime user, the install order the Makefile uses, every
packaged folder copied in, and the same command and uid the Kubernetes manifests assume.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SHIM_DEPLOYMENT = ROOT / "infra" / "base" / "shim-deployment.yaml"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words = (pending + line).split(None, 1)
        pending = ""
        out.append((words[0].upper(), words[1] if len(words) > 1 else ""))
    return out


def _instructions() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def _args(kind: str) -> list[str]:
    return [a for k, a in _instructions() if k == kind]


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _pip_installs() -> list[list[str]]:
    runs = " && ".join(_args("RUN"))
    return [shlex.split(cmd) for cmd in re.split(r"&&|;", runs) if "pip install" in cmd]


def test_parser_joins_continuations_and_drops_comments():
    text = "# c\nFROM a:1 AS b\nRUN x \\\n  && y\n# d\nUSER 1\n"
    assert instructions(text) == [("FROM", "a:1 AS b"), ("RUN", "x  && y"), ("USER", "1")]


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.11.13-slim-bookworm", True),
        ("python@sha256:" + "0" * 64, True),
        ("python:3.11-slim", False),
        ("python:latest", False),
        ("python", False),
    ],
    ids=["patch-version-tag", "digest", "minor-only-tag", "latest", "no-tag"],
)
def test_pin_rule(image, pinned):
    assert is_pinned(image) is pinned


def is_pinned(image: str) -> bool:
    """A full X.Y.Z version in the tag, or a content digest."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    return bool(re.match(r"\d+\.\d+\.\d+", tag))


def test_base_image_is_pinned_python_311_slim():
    (base,) = [a.split()[0] for a in _args("FROM")]
    assert is_pinned(base), f"FROM {base} is not pinned"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base
    assert _pyproject()["project"]["requires-python"].startswith(">=3.11")


def test_runs_as_a_non_root_user_matching_the_manifests():
    kinds = [k for k, _ in _instructions()]
    users = _args("USER")
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    (deployment,) = [d for d in yaml.safe_load_all(SHIM_DEPLOYMENT.read_text()) if d]
    pod_sc = deployment["spec"]["template"]["spec"]["securityContext"]
    assert user == str(pod_sc["runAsUser"]), "the image's uid and the pod's runAsUser differ"


def test_entrypoint_is_the_console_script_and_cmd_runs_the_shim_as_deployed():
    (entrypoint,) = _args("ENTRYPOINT")
    assert json.loads(entrypoint) == ["hydatis"]
    assert "hydatis" in _pyproject()["project"]["scripts"]
    (cmd,) = _args("CMD")
    (deployment,) = [d for d in yaml.safe_load_all(SHIM_DEPLOYMENT.read_text()) if d]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert json.loads(cmd) == container["args"]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("no-cache-everywhere", lambda cmds: all("--no-cache-dir" in c for c in cmds)),
        ("constraints-everywhere", lambda cmds: all("constraints.txt" in c for c in cmds)),
        ("torch-first", lambda cmds: any(a.startswith("torch==") for a in cmds[0])),
        ("project-last", lambda cmds: cmds[-1][-1] == "."),
        ("cpu-index", lambda cmds: any("whl/cpu" in a or "TORCH_INDEX" in a for a in cmds[0])),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_pip_install_order_and_flags(name, check):
    cmds = _pip_installs()
    assert len(cmds) >= 2, cmds
    assert check(cmds), f"{name}: {cmds}"


def test_torch_pin_is_the_projects():
    (torch_arg,) = [a for a in _pip_installs()[0] if a.startswith("torch==")]
    (pin,) = [d for d in _pyproject()["project"]["dependencies"] if d.startswith("torch==")]
    assert torch_arg.split("+")[0] == pin
    assert f"{torch_arg}\n" in (ROOT / "constraints.txt").read_text()


def test_every_packaged_folder_is_copied():
    copied = {a.split()[0] for a in _args("COPY")}
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    assert packages <= copied, f"not copied: {packages - copied}"
    assert {"pyproject.toml", "constraints.txt"} <= {w for a in _args("COPY") for w in a.split()}


@pytest.mark.parametrize(
    "label",
    ["org.opencontainers.image.title", "org.opencontainers.image.version"],
)
def test_label(label):
    assert any(label in a for a in _args("LABEL"))


def test_exposes_the_shim_port():
    assert "8888" in " ".join(_args("EXPOSE")).split()


@pytest.mark.parametrize("entry", [".git", ".venv", "tests", "out", "**/__pycache__"])
def test_dockerignore_keeps_out(entry):
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert entry in [line.strip() for line in lines]
