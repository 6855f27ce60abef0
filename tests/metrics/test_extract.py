"""One metrics extractor: metrics file > structured lines > regex fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hyperjoule.metrics import MetricPattern, extract_metrics, extract_metrics_from_lines

ACC = {"acc": MetricPattern(r"Accuracy:\s*([0-9.]+)", "last")}


def test_regex_first_and_last(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("Accuracy: 0.5\nAccuracy: 0.7\n")
    last = extract_metrics(log, patterns=ACC)
    first = extract_metrics(log, patterns={"acc": MetricPattern(ACC["acc"].regex, "first")})
    assert last.values == {"acc": 0.7} and last.sources == {"acc": "regex"}
    assert first.values == {"acc": 0.5}


def test_structured_line_beats_regex_and_last_wins(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        "Accuracy: 0.1\n"
        'INFO HYPERJOULE_METRICS {"acc": 0.8, "loss": 2}\n'
        'HYPERJOULE_METRICS {"acc": 0.9}\n'
        "Accuracy: 0.2\n"
    )
    got = extract_metrics(log, patterns=ACC)
    assert got.values == {"acc": 0.9, "loss": 2.0}
    assert got.sources == {"acc": "structured", "loss": "structured"}
    assert all(isinstance(v, float) for v in got.values.values())


def test_metrics_file_wins(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text('HYPERJOULE_METRICS {"acc": 0.9}\n')
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps({"acc": 0.95, "f1": 0.5}))
    got = extract_metrics(log, patterns=ACC, metrics_file=file)
    assert got.values == {"acc": 0.95, "f1": 0.5}
    assert got.sources["acc"] == "file"


def test_progress_bar_carriage_returns_split_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"10%|##\r50%|#####\rAccuracy: 0.66\r100%|##########\n")
    assert extract_metrics(log, patterns=ACC).values == {"acc": 0.66}


def test_bad_values_are_problems_not_metrics(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        'HYPERJOULE_METRICS {"acc": "high", "loss": NaN, "ok": true}\nHYPERJOULE_METRICS {broken\n'
    )
    got = extract_metrics(log, patterns={})
    assert got.values == {}
    assert len(got.problems) == 4


def test_missing_log_and_bad_metrics_file(tmp_path: Path) -> None:
    file = tmp_path / "metrics.json"
    file.write_text("[1, 2]")
    got = extract_metrics(tmp_path / "none.log", patterns=ACC, metrics_file=file)
    assert got.values == {} and len(got.problems) == 2


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=20))
def test_structured_roundtrip(values: list[float]) -> None:
    lines = [f"HYPERJOULE_METRICS {json.dumps({'m': v})}" for v in values]
    got = extract_metrics_from_lines(lines, patterns={})
    assert got.values == {"m": values[-1]}


def test_log_lines_are_bounded_whatever_the_line_ends(tmp_path: Path) -> None:
    from hyperjoule.metrics._bounds import MAX_LINE_BYTES
    from hyperjoule.metrics._logscan import iter_log_lines

    log = tmp_path / "attempt-1.log"
    with open(log, "wb") as f:
        f.write(b"\r".join(b"%d%%|##| step" % i for i in range(200_000)))
        f.write(b"\n" + b"y" * (3 * MAX_LINE_BYTES) + b"\r\n")
        f.write(b'HYPERJOULE_METRICS {"acc": 0.5}\nTest Accuracy: 91.5%')
    lines = list(iter_log_lines(log))
    assert len(lines) == 200_000 + 3
    assert max(len(line) for line in lines) == MAX_LINE_BYTES
    assert getattr(lines[200_000], "cut", False)
    found = extract_metrics(
        log, patterns={"test_accuracy": MetricPattern(r"Test Accuracy:\s*([0-9.]+)%")}
    )
    assert found.values == {"acc": 0.5, "test_accuracy": 91.5}
