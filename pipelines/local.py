"""Run a pipeline on this machine with ``kfp.local`` (``SubprocessRunner``), quietly.

Every task is a subprocess of the current interpreter running the installed project
(``use_venv=False``: nothing is installed; the components say
``install_kfp_package=False``, which saves kfp's 3-second pip call per task). kfp prints
every task's output; here it all goes to a log file instead, and a callback hears of each
task starting, finishing, being served from the cache or skipped — what a progress bar
needs.

With ``caching`` (the default) a task whose inputs are unchanged reuses its earlier
outputs, so a run that failed at one step is run again from there
(``<pipeline root>/.kfp_cache``). Registration, the gate and deployment act on the world
and never come from the cache.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LocalRun", "PipelineFailedError", "TaskEvent", "run_local"]

#: ``on_task(event, task)`` with event ``start``, ``done``, ``cached``, ``skipped`` or
#: ``failed``.
TaskEvent = Callable[[str, str], None]

_QUIET = (
    ".*have no effect in the current local runner.*",
    ".*custom or non-Python base image.*",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PATTERNS = [
    (re.compile(r"Executing task '?([\w.-]+)'?"), "start"),
    (re.compile(r"Task '?([\w.-]+)'? finished with status SUCCESS"), "done"),
    (re.compile(r"Task '?([\w.-]+)'? finished with status FAILURE"), "failed"),
    (re.compile(r"Task '?([\w.-]+)'? cache hit"), "cached"),
    (re.compile(r"Skipping (?:conditional )?task '?([\w.-]+)'?"), "skipped"),
]


class PipelineFailedError(RuntimeError):
    """A task of a local run failed; the log file has its output.

    Attributes:
        task: the failed task's name ('' when unknown).
        log_path: the run's log file.
        tail: the end of the log.
    """

    def __init__(self, message: str, task: str, log_path: Path, tail: str) -> None:
        super().__init__(message)
        self.task, self.log_path, self.tail = task, log_path, tail


@dataclass
class LocalRun:
    """A finished local run.

    Attributes:
        pipeline: the pipeline's name.
        output: what the pipeline returned (an artifact for this project's pipelines).
        run_dir: the run's folder under the pipeline root (the tasks' outputs).
        log_path: every task's output.
        seconds: wall time.
        cached: tasks served from the cache.
    """

    pipeline: str
    output: Any
    run_dir: Path | None
    log_path: Path
    seconds: float
    cached: int


class _TaskLog(io.TextIOBase):
    """A text stream writing to the log file and reporting task events line by line."""

    def __init__(self, fh: io.TextIOBase, on_task: TaskEvent | None) -> None:
        self.fh, self.on_task, self.buffer_, self.failed = fh, on_task, "", ""
        self.cached = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.fh.write(text)
        self.buffer_ += text
        while "\n" in self.buffer_:
            line, self.buffer_ = self.buffer_.split("\n", 1)
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.fh.flush()

    def _line(self, line: str) -> None:
        for pattern, event in _PATTERNS:
            match = pattern.search(line)
            if match:
                task = match.group(1)
                if event == "failed":
                    self.failed = task
                if event == "cached":
                    self.cached += 1
                if self.on_task is not None:
                    self.on_task(event, task)
                return


@contextlib.contextmanager
def _captured(stream: _TaskLog) -> Iterator[None]:
    """Send stdout and the root logger (kfp logs each task there) to ``stream``."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(stream):
            # kfp warns, per task, that SubprocessRunner ignores display names and base
            # images: true of every local run, not worth a screenful each time.
            for message in _QUIET:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        root.handlers = handlers
        root.setLevel(level)


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_local(
    pipeline: Any,
    arguments: Mapping[str, Any],
    *,
    pipeline_root: str | Path,
    caching: bool = True,
    log_path: str | Path | None = None,
    on_task: TaskEvent | None = None,
) -> LocalRun:
    """Run ``pipeline`` (a ``@dsl.pipeline`` function) locally with ``arguments``.

    Args:
        pipeline: the pipeline function.
        arguments: its parameters.
        pipeline_root: where the tasks' outputs (and the cache) go.
        caching: reuse the outputs of tasks whose inputs are unchanged.
        log_path: the log file (default ``<pipeline root>/<pipeline>.log``).
        on_task: called on each task event (module docstring).

    Returns:
        The :class:`LocalRun`.

    Raises:
        PipelineFailedError: a task failed (its output is in the log).
    """
    from kfp import local

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    name = getattr(pipeline, "name", None) or getattr(pipeline, "__name__", "pipeline")
    log_file = Path(log_path) if log_path is not None else root / f"{name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
        enable_caching=caching,
    )
    before = {p for p in root.iterdir() if p.is_dir()}
    t0 = time.perf_counter()
    with log_file.open("w") as fh:
        stream = _TaskLog(fh, on_task)
        try:
            with _captured(stream):
                task = pipeline(**dict(arguments))
        except RuntimeError as exc:
            stream.flush()
            raise PipelineFailedError(
                f"{name}: {_ANSI.sub('', str(exc))} (log: {log_file})",
                stream.failed,
                log_file,
                _tail(log_file),
            ) from exc
        finally:
            sys.stdout.flush()
    new = sorted((p for p in root.iterdir() if p.is_dir() and p not in before), key=str)
    return LocalRun(
        pipeline=name,
        output=task.output,
        run_dir=new[-1] if new else None,
        log_path=log_file,
        seconds=time.perf_counter() - t0,
        cached=stream.cached,
    )
