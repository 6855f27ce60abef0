"""Worker processes for big reports: reading parts of the database, drawing figures.

Reading and drawing are most of a large report's time, and both split into independent
pieces: parts of the runs, one figure each. Big reports hand them to up to two worker
processes; a figure leaves a placeholder in the page that is replaced by the image at the
end. Small reports do everything inline (starting workers would cost more than it saves).

Workers are plain ``python -m hyperjoule.report._worker`` subprocesses fed over pipes,
not ``multiprocessing``: forking a process that may hold threads is unsafe, and spawning
re-runs the caller's main script in every worker. A failed worker never loses a figure:
it is drawn in this process instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from hyperjoule.report.render import _figure_draw

__all__ = [
    "JOBS",
    "POOL_MIN_FIGURES",
    "POOL_MIN_RUNS",
    "FigurePool",
    "WorkerError",
    "default_workers",
    "find_job",
]

logger = logging.getLogger(__name__)

POOL_MIN_RUNS = 1000
"""Reports over at least this many runs share reading and drawing with workers."""

POOL_MIN_FIGURES = 10
"""Smaller reports with at least this many figures share the drawing with workers."""

_Job = tuple[str, dict[str, Any], "Future[Any]"]

JOBS = ("hyperjoule.report.load._frame:load_part",)
"""Functions a worker runs besides the ``draw_*`` figures of :mod:`.render._figure_draw`."""


def find_job(name: str) -> Callable[..., Any]:
    """The function a job name stands for (``draw_pareto``, or a :data:`JOBS` entry).

    Raises:
        ValueError: Not a known job (workers run nothing else).
    """
    import importlib

    if name in JOBS:
        module, _, attr = name.partition(":")
        func: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        return func
    draw = getattr(_figure_draw, name, None)
    if name.startswith("draw_") and callable(draw):
        found: Callable[..., Any] = draw
        return found
    raise ValueError(f"unknown worker job {name!r}")


def _job_name(func: Callable[..., Any]) -> str:
    short = str(func.__name__)
    if getattr(_figure_draw, short, None) is func:
        return short
    name = f"{func.__module__}:{short}"
    if name not in JOBS:
        raise ValueError(f"{name} cannot run in a report worker")
    return name


class WorkerError(RuntimeError):
    """A worker process could not draw a figure (it died, or drawing raised)."""


def default_workers(runs: int, figures: int = 0) -> int:
    """Worker processes for a report over ``runs`` runs or with ``figures`` figures.

    0 (everything inline) for small reports, else up to two: one per CPU beyond the
    first, as this process works too.
    """
    if runs < POOL_MIN_RUNS and figures < POOL_MIN_FIGURES:
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(2, cpus) if cpus > 1 else 0


def write_frame(stream: IO[bytes], payload: Any) -> None:
    """Send one pickled message, length first."""
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """Receive one message; raises EOFError when the other side is gone."""
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("pipe closed")
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("pipe closed mid-message")
    return pickle.loads(data)  # noqa: S301 - our own child process on our own pipe


class _Worker:
    """One worker process and the thread that feeds it jobs from the shared queue."""

    def __init__(self, jobs: queue.Queue[_Job | None]) -> None:
        env = dict(os.environ)
        # The worker must import this very hyperjoule, also from a source checkout.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hyperjoule.report._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.thread = threading.Thread(
            target=self._serve, args=(jobs,), name="hyperjoule-figures", daemon=True
        )
        self.thread.start()

    def _serve(self, jobs: queue.Queue[_Job | None]) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        broken: str | None = None
        while (job := jobs.get()) is not None:
            name, kwargs, future = job
            if broken is not None:
                future.set_exception(WorkerError(broken))
                continue
            try:
                write_frame(self.proc.stdin, (name, kwargs))
                ok, value = read_frame(self.proc.stdout)
            except (OSError, EOFError, pickle.PickleError) as e:
                broken = f"figure worker stopped: {e}"
                future.set_exception(WorkerError(broken))
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(WorkerError(value))

    def close_input(self) -> None:
        """Tell the worker to exit (it stops when its input closes)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):  # already gone: nothing to tell
                self.proc.stdin.close()

    def wait(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class FigurePool:
    """Runs jobs inline or in worker processes; :meth:`fill` puts figures in the page.

    Args:
        workers: Worker processes; 0 runs everything inline, at once.
    """

    def __init__(self, workers: int = 0) -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._workers: list[_Worker] = []
        self._pending: dict[str, tuple[Future[Any], Callable[..., str], dict[str, Any]]] = {}
        self._prefix = f"hj-figure-{secrets.token_hex(6)}-"
        self.start(workers)

    def start(self, workers: int) -> None:
        """Start worker processes up to ``workers`` (none are stopped)."""
        while len(self._workers) < workers:
            self._workers.append(_Worker(self._jobs))

    @property
    def workers(self) -> int:
        """How many worker processes run jobs (0: everything runs inline)."""
        return len(self._workers)

    def run(self, func: Callable[..., Any], /, **kwargs: Any) -> Future[Any]:
        """Run ``func(**kwargs)`` in a worker (inline without workers); its future result.

        ``func`` must be a ``draw_*`` figure of :mod:`.render._figure_draw` or listed in
        :data:`JOBS`.
        """
        future: Future[Any] = Future()
        if not self._workers:
            try:
                future.set_result(func(**kwargs))
            except BaseException as e:
                future.set_exception(e)
            return future
        self._jobs.put((_job_name(func), kwargs, future))
        return future

    def submit(self, draw: Callable[..., str], /, **kwargs: Any) -> str:
        """Draw a figure (a ``data:`` URI), or return a placeholder filled in later."""
        if not self._workers:
            return draw(**kwargs)
        token = f"{self._prefix}{len(self._pending)}"
        self._pending[token] = (self.run(draw, **kwargs), draw, kwargs)
        return token

    def _result(self, token: str) -> str:
        future, draw, kwargs = self._pending[token]
        try:
            return str(future.result())
        except WorkerError as e:
            logger.warning("%s; drawing the figure in this process", e)
            return draw(**kwargs)

    def fill(self, html: str) -> str:
        """Replace every placeholder in ``html`` by its figure, waiting for the workers."""
        if not self._pending:
            return html
        pattern = re.compile(re.escape(self._prefix) + r"[0-9]+")
        return pattern.sub(lambda m: self._result(m.group(0)), html)

    def close(self) -> None:
        """Stop the workers (figures still queued are not drawn)."""
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.thread.join()
        # Every worker is told first, then awaited: they exit side by side.
        for worker in self._workers:
            worker.close_input()
        for worker in self._workers:
            worker.wait()
        self._workers = []

    def __enter__(self) -> FigurePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
