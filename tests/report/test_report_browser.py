"""The report in a real browser: headless Chromium renders it, the DOM holds the figures.

Needs Debian's ``chromium`` package (``apt-get install chromium``); skipped without it.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_data import energy_block, epochs_study, store

from hyperjoule.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)"
)

# What Chromium logs when the page itself has a problem (as opposed to the sandbox, D-Bus
# or GPU chatter of a headless container, which is no concern of the report).
PAGE_PROBLEMS = (
    "CONSOLE",
    "Uncaught",
    "net::ERR",
    "Failed to load",
    "Refused to",
    "local resource",
)


class Dom(HTMLParser):
    """Collects what the assertions need from the DOM Chromium dumps."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.sections: list[str] = []
        self.pareto_rows = 0
        self._in_pareto = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        elif tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        elif tag == "table" and "pareto" in (a.get("class") or ""):
            self._in_pareto = True
        elif tag == "tr" and self._in_pareto:
            self.pareto_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_pareto = False


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    records = epochs_study(60)
    for r in records[:30]:  # half estimated: the labels must show
        r.energy = energy_block(None, r.energy.total_j, method="estimated")
    results = store(root / "results", records)
    return write_report(results, root / "report.html").path


def test_chromium_renders_the_report(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    problems = [line for line in done.stderr.splitlines() if any(p in line for p in PAGE_PROBLEMS)]
    assert problems == []
    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        gray = image.convert("L")
        histogram = gray.histogram()
        not_white = sum(histogram[:250]) / (1280 * 4000)
        assert not_white > 0.02  # text, tables and plots, not a blank page
        colours = image.convert("RGB").getcolors(1 << 24) or []
        assert len(colours) > 50  # the plots' colours, anti-aliased


def test_dom_holds_plots_and_the_pareto_table(report: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Dom()
    dom.feed(done.stdout)
    assert dom.sections == [
        "summary",
        "pareto",
        "target",
        "hyperparameters",
        "parallel",
        "cost",
        "timeline",
        "methods",
    ]
    assert len(dom.images) >= 4
    for img in dom.images:
        src = img.get("src") or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
        assert img.get("alt")
    assert dom.pareto_rows >= 2  # header and at least one front run
