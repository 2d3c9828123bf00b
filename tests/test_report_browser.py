"""The report as a person sees it: headless Chromium renders the HTML and the figures are read from the DOM.

The first test renders a report of hand-built marts; the others share one small demo run (module-scoped)
and check the page against the demo's DuckDB file, then take the README's pictures with
docs/screenshots.py, the same code `make screenshots` runs.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import sys
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from dagster_project.config.model import ReconConfig
from dagster_project.reports import build_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))

import screenshots  # noqa: E402
from screenshots import chromium  # noqa: E402,F401  (tests/test_ui.py renders the UI with it too)

pytestmark = pytest.mark.skipif(not screenshots.has_chromium(),
                                reason="Debian's chromium is not installed (apt-get install -y chromium)")


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


def figure(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("+", "").replace("−", "-").strip())


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
    assert page.by_id["previous-date"] == "2026-10-04"
    assert page.by_id["tie-out-status"] == "sums exactly"
    assert page.by_id["sold-EUR"] == "170.15"
    assert page.by_id["paid-USD"] == "92.32"
    assert page.by_id["at-risk-EUR"] == "15.55"
    assert page.by_id["at-risk-count-EUR"] == "2"
    assert page.by_id["open-exceptions"] == "4"
    assert page.by_id["oldest-open-since"] == "2026-09-20"
    assert " ".join(page.by_id["no-currency-count"].split()) == "1 orders · 1 exceptions"
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
    # the legend comes before the bars it explains
    assert dom.index('class="legend"') < dom.index('class="chart"')

    # printed to PDF from the browser: A4 landscape (the print stylesheet's @page), several pages
    pdf = tmp_path / "report.pdf"
    chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", result.html.as_uri()], tmp_path / "profile3")
    body = pdf.read_bytes()
    boxes = {tuple(float(v) for v in box.split()) for box in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", body)}
    assert boxes and all(round(w) == 842 and round(h) == 595 for _, _, w, h in boxes), boxes
    assert len(re.findall(rb"/Type\s*/Page[^s]", body)) >= 3  # the long sections start on a page of their own


# ---- on a real demo run -------------------------------------------------------------------------


# One test, one small demo (2 days, run as `make screenshots` runs it): under xdist a module-scoped
# fixture would run once per worker that takes one of the module's tests, so the checks share a test.
@pytest.mark.slow
def test_demo_report_matches_the_marts_and_make_screenshots_takes_the_pictures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    screenshots.ensure_demo(home, orders=300, days=2, echo=lambda _: None)
    check_the_report_asset_reruns_the_same(home, monkeypatch)
    check_report_figures_against_the_marts(home, tmp_path / "figures")
    check_the_screenshots(home, tmp_path / "shots")


def check_the_report_asset_reruns_the_same(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The nightly runs wrote the report; materializing the asset again changes no file; it matches the marts."""
    import json

    import dagster as dg

    from dagster_project.config.model import DEMO_CONFIG_PATH
    from dagster_project.definitions import build_definitions

    for key, value in screenshots.demo_env(home).items():
        if key.startswith(("RECON_", "DAGSTER_HOME")):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("RECON_CONFIG", raising=False)
    report = screenshots.latest_report(home).parent
    first = {p.name: p.read_bytes() for p in report.iterdir() if p.suffix in (".csv", ".xlsx")}
    instance = dg.DagsterInstance.get()
    job = build_definitions(str(DEMO_CONFIG_PATH)).resolve_job_def("nightly_reconciliation")
    rerun = job.execute_in_process(partition_key=report.name, instance=instance,
                                   asset_selection=[dg.AssetKey("reconciliation_report")])
    assert rerun.success
    csvs = {name for name in first if name.endswith(".csv")}
    assert {p.name: p.read_bytes() for p in report.iterdir() if p.name in csvs} == {
        name: first[name] for name in csvs}  # reruns change nothing
    summary = json.loads((report / "summary.json").read_text())
    assert summary["tie_out_ok"] is True and summary["previous_as_of_date"]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        # fct_orders is the last built day: the report's system totals equal it, per currency
        expected = dict(con.execute("select currency, sum(total_amount) from marts.fct_orders "
                                    "where has_order_record group by currency").fetchall())
        diffs = con.execute("select count(*) from marts.fct_order_diffs where as_of_date = ?",
                            [dt.date.fromisoformat(report.name)]).fetchall()[0][0]
    finally:
        con.close()
    assert expected and {c: summary["currencies"][c]["sold"] for c in expected} == pytest.approx(
        {c: float(v) for c, v in expected.items()}, abs=1e-9)
    assert summary["metrics"]["diffs"] == diffs
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("reconciliation_report")).asset_materialization.metadata
    assert metadata["tie_out_ok"].value is True and "reconciled_rate" in metadata and "preview" in metadata


def marts_figures(home: Path, as_of: dt.date) -> dict:
    """The first screen's figures, queried from the demo's DuckDB file independently of the report's code."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        def sold(day: dt.date) -> dict[str, Decimal]:
            return dict(con.execute("""
                select currency, sum(total_amount) from (
                    select *, row_number() over (partition by order_id order by as_of_date desc) as recency
                    from marts.fct_order_state_history where as_of_date <= ?)
                where recency = 1 and has_order_record group by currency""", [day]).fetchall())

        previous = con.execute("select max(as_of_date) from marts.fct_reconciliation_daily where as_of_date < ?",
                               [as_of]).fetchall()[0][0]
        # the latest day: an exception's status in the store is its status as of that day
        at_risk = {c: (n, a) for c, n, a in con.execute("""
            select currency, count(*), sum(amount_at_risk) from recon.exceptions
            where status in ('open', 'acknowledged') and currency is not null group by currency""").fetchall()}
        open_all = con.execute("select count(*) from recon.exceptions where status in ('open', 'acknowledged')"
                               ).fetchall()[0][0]
        rate = con.execute("select reconciled_rate from marts.fct_reconciliation_daily where as_of_date = ?",
                           [as_of]).fetchall()[0][0]
        return {"sold": sold(as_of), "sold_before": sold(previous), "previous": previous, "at_risk": at_risk,
                "open": open_all, "rate": rate}
    finally:
        con.close()


def check_report_figures_against_the_marts(demo_home: Path, tmp_path: Path) -> None:
    """The first screen's figures in the browser's DOM equal the marts of the demo's DuckDB file."""
    report = screenshots.latest_report(demo_home)
    as_of = dt.date.fromisoformat(report.parent.name)
    dom = chromium(["--virtual-time-budget=2000", "--dump-dom", report.as_uri()], tmp_path / "profile")
    page = TextById()
    page.feed(dom)
    marts = marts_figures(demo_home, as_of)
    assert page.by_id["as-of-date"] == str(as_of) and page.by_id["previous-date"] == str(marts["previous"])
    assert marts["sold"] and set(marts["at_risk"]) <= set(marts["sold"])
    for currency, sold in marts["sold"].items():
        assert figure(page.by_id[f"sold-{currency}"]) == sold.quantize(Decimal("0.01"))
        # the change since the previous day, as printed under the figure
        delta = re.search(rf'id="sold-{currency}">[^<]*</a>\s*<small class="n">[^<]*</small>'
                          rf'<span class="up">([^ ]+) since', dom)
        assert delta and figure(delta.group(1)) == (sold - marts["sold_before"].get(currency, 0)).quantize(
            Decimal("0.01"))
    for currency, (count, amount) in marts["at_risk"].items():
        assert figure(page.by_id[f"at-risk-{currency}"]) == amount.quantize(Decimal("0.01"))
        assert int(page.by_id[f"at-risk-count-{currency}"]) == count
    assert int(page.by_id["open-exceptions"].replace(",", "")) == marts["open"]
    assert page.by_id["reconciled-rate"] == f"{marts['rate'] * 100:.1f}%"
    assert page.by_id["tie-out-status"] == "sums exactly"


def check_the_screenshots(demo_home: Path, tmp_path: Path) -> None:
    """`make screenshots`' code takes the report's first screen, an exception's `show` and the asset graph."""
    shots = screenshots.shoot_all(demo_home, tmp_path / "images", tmp_path / "scratch", echo=lambda _: None)
    assert set(shots) == {"report", "exception", "asset_graph"}
    for name, png in shots.items():
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(data) > 20_000, f"{name}: {len(data)} bytes, a blank page?"
    # the terminal page shows what `recon exceptions show` printed, in the owner's words
    env = screenshots.demo_env(demo_home)
    _, text = screenshots.shoot_exception(env, tmp_path / "again.png", tmp_path / "profile")
    assert text.startswith("Exception ") and "Events (as-of day" in text and "amount at risk:" in text
    assert html.escape(text.splitlines()[-1]) in screenshots.terminal_html("recon exceptions show X", text)
