"""The :class:`~hyperjoule.execution.Executor` contract as a reusable pytest class.

Subclass :class:`ExecutorContract` in a ``Test*`` class and provide an
``executor_factory`` fixture: a callable ``(capacity, gpus) -> Executor`` returning a
fresh executor that runs at most ``capacity`` attempts at once and may hand out the
(fake) GPU indices ``gpus`` (no real GPU is needed: the attempts only read
``CUDA_VISIBLE_DEVICES``). Attempts are measured by whatever meters the executor's node
uses; tests pass :class:`~hyperjoule.meters.FakeMeter`-backed
:class:`~hyperjoule.devices.NodeDevices`. Every test then runs against that executor::

    class TestLocalExecutor(ExecutorContract):
        @pytest.fixture
        def executor_factory(self, tmp_path):
            def make(capacity, gpus):
                return LocalExecutor(NodeDevices(fixed=[FakeMeter({"gpu": 100.0})]),
                                     jobs=capacity, gpus=gpus)
            return make
"""

from __future__ import annotations

import os
import pickle
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from pathlib import Path

import pytest

from hyperjoule.errors import ExecutorError
from hyperjoule.execution import AttemptResult, Executor, MetricRule, RunTask
from hyperjoule.records import RunStatus

__all__ = [
    "ExecutorContract",
    "ExecutorFactory",
    "make_task",
    "process_alive",
    "wait_for_path",
]

ExecutorFactory = Callable[[int, Sequence[int]], Executor]

# A target that logs when it runs and which GPUs it sees, then prints a metric.
_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    marks = sys.argv[1]
    sleep_s = float(sys.argv[2])
    exit_code = int(sys.argv[3])
    with open(marks, "a") as f:
        f.write(f"start {time.time():.4f} {os.environ.get('CUDA_VISIBLE_DEVICES', '-')} "
                f"{os.environ['HYPERJOULE_RUN_ID']}\\n")
    with open(os.path.join(os.environ["HYPERJOULE_RUN_DIR"], "pid"), "w") as f:
        f.write(str(os.getpid()))
    print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "-"), flush=True)
    time.sleep(sleep_s)
    with open(marks, "a") as f:
        f.write(f"end {time.time():.4f} - {os.environ['HYPERJOULE_RUN_ID']}\\n")
    print("accuracy: 0.9", flush=True)
    sys.exit(exit_code)
    """
)


def make_task(
    base: Path,
    *,
    sleep_s: float = 0.0,
    exit_code: int = 0,
    gpus_per_run: int = 0,
    timeout_s: float | None = None,
    attempt: int = 1,
) -> RunTask:
    """A self-contained task running a small Python script under ``base``."""
    script = base / "target.py"
    if not script.exists():
        script.write_text(_SCRIPT)
    run_id = uuid.uuid4().hex[:12]
    run_dir = base / "runs" / run_id
    return RunTask(
        run_id=run_id,
        attempt=attempt,
        slot_id=f"e0-{run_id}",
        study="contract",
        target="toy",
        model=None,
        mode="default",
        argv=(sys.executable, str(script), str(base / "marks.txt"), str(sleep_s), str(exit_code)),
        cwd=str(base),
        run_dir=str(run_dir),
        env={
            "HYPERJOULE_RUN_DIR": str(run_dir),
            "HYPERJOULE_METRICS_FILE": str(run_dir / "metrics.json"),
            "HYPERJOULE_RUN_ID": run_id,
            "HYPERJOULE_ATTEMPT": str(attempt),
        },
        timeout_s=timeout_s,
        metrics=(MetricRule("accuracy", regex=r"accuracy: ([0-9.]+)"),),
        required_metrics=("accuracy",),
        gpus_per_run=gpus_per_run,
        grace_s=1.0,
    )


def _marks(base: Path) -> list[tuple[str, float, str, str]]:
    path = base / "marks.txt"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        kind, stamp, gpus, run_id = line.split()
        rows.append((kind, float(stamp), gpus, run_id))
    return rows


def _max_overlap(base: Path) -> int:
    events = sorted((t, 1 if kind == "start" else -1) for kind, t, _, _ in _marks(base))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is running (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not running any more.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for_path(path: Path, timeout_s: float = 20.0) -> None:
    """Wait until ``path`` exists; AssertionError after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


class ExecutorContract:
    """Tests every Executor implementation must pass."""

    @pytest.fixture
    def executor_factory(self) -> ExecutorFactory:
        """A callable ``(capacity, gpus) -> Executor``; subclasses override it."""
        raise NotImplementedError("subclasses provide an `executor_factory` fixture")

    @pytest.fixture
    def make(self, executor_factory: ExecutorFactory) -> Iterator[ExecutorFactory]:
        """The factory, shutting every executor it made down after the test."""
        made: list[Executor] = []

        def factory(capacity: int, gpus: Sequence[int] = ()) -> Executor:
            executor = executor_factory(capacity, gpus)
            made.append(executor)
            return executor

        yield factory
        for executor in made:
            executor.shutdown(cancel=True)

    def test_success_result_and_files(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """A successful attempt: typed result, metrics, energy, files under run_dir."""
        executor = make(1, ())
        task = make_task(tmp_path)
        future = executor.submit(task)
        assert isinstance(future, Future)
        result = future.result(timeout=60)
        assert isinstance(result, AttemptResult)
        assert (result.run_id, result.attempt) == (task.run_id, task.attempt)
        assert result.status is RunStatus.SUCCEEDED, result.reason
        assert result.exit_code == 0
        assert result.metrics == {"accuracy": 0.9}
        assert result.duration_s > 0
        assert result.executor is not None and result.executor.kind == executor.kind
        run_dir = Path(task.run_dir)
        assert result.log in result.files
        for relative in result.files:
            assert not Path(relative).is_absolute()
            assert (run_dir / relative).is_file(), relative
        assert "accuracy: 0.9" in (run_dir / result.log).read_text()
        assert result.energy.components, "the node's meters measured nothing"

    def test_failure_is_a_result_not_an_exception(
        self, make: ExecutorFactory, tmp_path: Path
    ) -> None:
        """A failing process resolves the future with ``failed``."""
        result = make(1, ()).submit(make_task(tmp_path, exit_code=3)).result(timeout=60)
        assert result.status is RunStatus.FAILED
        assert result.exit_code == 3

    def test_timeout_is_classified(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """A timeout kills the process and says ``timeout``."""
        task = make_task(tmp_path, sleep_s=30, timeout_s=0.5)
        result = make(1, ()).submit(task).result(timeout=60)
        assert result.status is RunStatus.TIMEOUT
        assert not process_alive(int((Path(task.run_dir) / "pid").read_text()))

    def test_capacity_is_respected_and_used(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """Exactly ``capacity`` attempts overlap."""
        executor = make(2, ())
        assert executor.capacity == 2
        futures = [executor.submit(make_task(tmp_path, sleep_s=0.8)) for _ in range(4)]
        results = [f.result(timeout=120) for f in futures]
        assert all(r.status is RunStatus.SUCCEEDED for r in results)
        assert _max_overlap(tmp_path) == 2

    def test_concurrent_attempts_get_disjoint_gpus(
        self, make: ExecutorFactory, tmp_path: Path
    ) -> None:
        """Overlapping attempts hold different GPUs, as their results say."""
        executor = make(2, (0, 1))
        tasks = [make_task(tmp_path, sleep_s=0.8, gpus_per_run=1) for _ in range(4)]
        results = [f.result(timeout=120) for f in [executor.submit(t) for t in tasks]]
        for result in results:
            assert result.executor is not None and result.executor.gpu_ids is not None
            assert len(result.executor.gpu_ids) == 1
        starts = {run_id: gpus for kind, _, gpus, run_id in _marks(tmp_path) if kind == "start"}
        for task, result in zip(tasks, results, strict=True):
            assert result.executor is not None and result.executor.gpu_ids is not None
            assert starts[task.run_id] == ",".join(map(str, result.executor.gpu_ids))
        # Attempts that overlapped in time held different GPUs.
        spans: dict[str, list[float]] = {}
        for _kind, stamp, _, run_id in _marks(tmp_path):
            spans.setdefault(run_id, []).append(stamp)
        for a in tasks:
            for b in tasks:
                if a.run_id < b.run_id:
                    (a0, a1), (b0, b1) = spans[a.run_id], spans[b.run_id]
                    if a0 < b1 and b0 < a1:
                        assert starts[a.run_id] != starts[b.run_id]

    def test_task_needing_more_gpus_than_exist_fails_its_future(
        self, make: ExecutorFactory, tmp_path: Path
    ) -> None:
        """An unplaceable task fails its future with ExecutorError."""
        future = make(1, (0,)).submit(make_task(tmp_path, gpus_per_run=2))
        with pytest.raises(ExecutorError):
            future.result(timeout=60)

    def test_shutdown_cancel_stops_everything(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """Cancel: queued cancelled, running interrupted, no process left."""
        executor = make(2, ())
        running = [make_task(tmp_path, sleep_s=60) for _ in range(2)]
        queued = make_task(tmp_path, sleep_s=60)
        futures = [executor.submit(t) for t in running]
        late = executor.submit(queued)
        for task in running:
            wait_for_path(Path(task.run_dir) / "pid")
        started = time.monotonic()
        executor.shutdown(cancel=True)
        assert time.monotonic() - started < 30
        assert late.cancelled() or late.result(timeout=1).status is RunStatus.INTERRUPTED
        done, _ = wait(futures, timeout=30)
        assert len(done) == 2
        for future, task in zip(futures, running, strict=True):
            assert future.result().status is RunStatus.INTERRUPTED
            assert not process_alive(int((Path(task.run_dir) / "pid").read_text()))
        with pytest.raises(RuntimeError):
            executor.submit(make_task(tmp_path))

    def test_shutdown_without_cancel_waits(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """Shutdown without cancel waits for every task; it is idempotent."""
        executor = make(1, ())
        futures = [executor.submit(make_task(tmp_path, sleep_s=0.2)) for _ in range(2)]
        executor.shutdown(cancel=False)
        assert all(f.done() and f.result().status is RunStatus.SUCCEEDED for f in futures)
        executor.shutdown(cancel=False)  # idempotent

    def test_each_task_runs_exactly_once(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """No task runs twice, none is lost."""
        executor = make(2, ())
        tasks = [make_task(tmp_path) for _ in range(6)]
        for future in [executor.submit(t) for t in tasks]:
            future.result(timeout=120)
        starts = [run_id for kind, _, _, run_id in _marks(tmp_path) if kind == "start"]
        assert sorted(starts) == sorted(t.run_id for t in tasks)

    def test_tasks_and_results_pickle(self, make: ExecutorFactory, tmp_path: Path) -> None:
        """Tasks and results cross process boundaries."""
        task = make_task(tmp_path)
        assert pickle.loads(pickle.dumps(task)) == task
        result = make(1, ()).submit(task).result(timeout=60)
        again = pickle.loads(pickle.dumps(result))
        assert again.status is result.status and again.energy.to_dict() == result.energy.to_dict()
