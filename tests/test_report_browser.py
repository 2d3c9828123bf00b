"""The report as a person sees it: headless Chromium renders the HTML and the key figures are read from the DOM."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.config import ReconConfig
from dagster_project.lib.reports import build_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (apt-get install -y chromium)")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(args: list[str], profile: Path, timeout: float = 90) -> str:
    """Run headless Chromium with a fresh profile; return its stdout."""
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


class TextById(HTMLParser):
    """Collect the text of elements with an id, and of tie-out cells by currency/bucket/measure."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.cells: dict[tuple[str, str, str], str] = {}
        self._stack: list[tuple[str, str | None, tuple | None]] = []
        self._currency = self._bucket = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "tie-out" in (a.get("class") or ""):
            self._currency = a.get("data-currency")
        if tag == "tr":
            self._bucket = a.get("data-bucket")
        cell = None
        if tag == "td" and self._currency and self._bucket and a.get("data-measure"):
            cell = (self._currency, self._bucket, a["data-measure"])
        self._stack.append((tag, a.get("id"), cell))
        for key in (a.get("id"), cell):
            if key is not None:
                target = self.by_id if isinstance(key, str) else self.cells
                target[key] = ""

    def handle_endtag(self, tag):
        while self._stack:
            popped = self._stack.pop()
            if popped[0] == tag:
                break
        if tag == "table":
            self._currency = None

    def handle_data(self, data):
        for _, id_, cell in self._stack:
            if id_ is not None:
                self.by_id[id_] += data
            if cell is not None:
                self.cells[cell] += data


def test_chromium_renders_the_report_and_its_key_figures(tmp_path: Path, demo_config: ReconConfig) -> None:
    from test_reports import D, build_small_database

    db = tmp_path / "small.duckdb"
    build_small_database(db)
    con = duckdb.connect(str(db), read_only=True)
    result = build_report(con, demo_config, D, out=tmp_path / "reports")
    con.close()

    dom = chromium(["--virtual-time-budget=2000", "--dump-dom", result.html.as_uri()], tmp_path / "profile")
    page = TextById()
    page.feed(dom)
    assert page.by_id["as-of-date"] == "2026-10-05"
    assert page.by_id["tie-out-status"] == "sums exactly"
    assert page.by_id["sold-EUR"] == "170.15"
    assert page.by_id["paid-USD"] == "92.32"
    assert page.by_id["at-risk-EUR"] == "15.55"
    assert page.by_id["open-exceptions"] == "3"
    assert page.by_id["oldest-open-since"] == "2026-09-20"
    assert page.cells[("EUR", "total", "sold")] == "170.15"
    assert page.cells[("EUR", "reconciled", "sold")] == "100.10"
    assert page.cells[("USD", "cancelled_refunded", "sold")] == "30.00"
    # every bridge column adds up on screen too (two decimals shown; every line is exact to four)
    for currency in ("EUR", "USD"):
        for measure in ("sold", "paid", "invoiced", "fulfilled"):
            lines = [float(v.replace(",", "")) for (c, b, m), v in page.cells.items()
                     if c == currency and m == measure and b != "total"]
            assert sum(lines) == pytest.approx(float(page.cells[(currency, "total", measure)].replace(",", "")))
    assert len(re.findall(r"<svg", dom)) >= 4  # tie-out, money at risk and trend charts are drawn inline

    shot = tmp_path / "report.png"
    chromium(["--window-size=1280,2400", f"--screenshot={shot}", result.html.as_uri()], tmp_path / "profile2")
    assert shot.stat().st_size > 10_000
