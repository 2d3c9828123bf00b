"""The demo's contract breaks (contract_breaks.csv) are caught by the contract checks, and nothing else is.

A small demo is landed with the file-drop connector into a temporary DuckDB file; the committed suites
then run with recording on for the last as-of day. Every listed break must be quarantined under its
rule and column and show in recon_meta.contract_violations; the rest of the data must pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.contracts.runner import ContractResult, validate_all
from dagster_project.exceptions.contract_diffs import contract_violation_diffs
from dagster_project.lib.database import connect
from ingestion.demo import expected_contract_breaks, expected_diffs, generate
from ingestion.demo.contract_breaks import CONTRACT_BREAKS_FILE

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

START = dt.date(2026, 6, 1)  # in the past: landed rows must not look "future" to the checks
DAYS = 5
LAST = START + dt.timedelta(days=DAYS - 1)
ARGS = dict(orders=300, days=DAYS, seed=7, start_date=START)


@pytest.fixture(scope="module")
def rules() -> dict:
    return yaml.safe_load(DEMO_CONFIG_PATH.read_text(encoding="utf-8"))["rules"]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, rules: dict) -> Iterator[tuple]:
    """(data dir, config, connection, contract results) after landing the demo and checking it."""
    from dagster_project.defs.ingestion.assets import file_drop_stream
    from ingestion.sync import sync_stream

    root = tmp_path_factory.mktemp("contract_breaks")
    data = root / "demo-data"
    generate(data, **ARGS, rules=rules)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECON_HOME", str(root / "home"))
        mp.setenv("RECON_DEMO_DATA", str(data))
        mp.delenv("RECON_CONFIG", raising=False)
        config = load_config(DEMO_CONFIG_PATH)
        con = connect(config.duckdb_path)
        try:
            for system_name, system in sorted(config.systems.items()):
                for stream_name in sorted(system.streams):
                    result = sync_stream(con, file_drop_stream(system_name, system, stream_name))
                    assert result.status == "succeeded", (system_name, stream_name, result.errors)
                    assert result.records_quarantined == 0, (system_name, stream_name)
            results = validate_all(con, config, as_of_date=LAST, record=True)
            yield data, config, con, results
        finally:
            con.close()


def _landed(con: duckdb.DuckDBPyConnection, system: str, stream: str, raw_id: str, column: str) -> str | None:
    """The text of `column` (or `column.json.path`) of one landed row."""
    name, *path = column.split(".")
    expr = f'cast("{name}" as varchar)'
    if path:
        expr = f"json_extract_string(\"{name}\", '$.{'.'.join(path)}')"
    rows = con.execute(f"select {expr} from raw_{system}.{stream} where _airbyte_raw_id = ?", [raw_id]).fetchall()
    assert len(rows) == 1, (system, stream, raw_id)
    return rows[0][0]


def test_the_demo_lists_one_break_per_stream(checked: tuple) -> None:
    data, config, _, _ = checked
    breaks = expected_contract_breaks(data)
    streams = sorted(f"{s}/{t}" for s, sys_ in config.systems.items() for t in sys_.streams)
    assert sorted(f"{b['system']}/{b['stream']}" for b in breaks) == streams
    assert {b["rule_id"].split(":")[0] for b in breaks} == {
        "key_not_null", "accepted_status", "currency_iso", "amount_parseable", "timestamp_not_future"}
    for b in breaks:
        assert (data / b["file"]).is_file()
        assert b["file"].startswith(f"{b['system']}/{b['stream']}/{b['as_of_date']}.")
        assert b["rule_id"].endswith(":" + b["column"])
        assert START <= dt.date.fromisoformat(b["as_of_date"]) <= LAST
        assert b["order_id"] == "" or b["order_id"].startswith("SO-8")
    # each order id of a break is in its own record only, and in no diff of the ground truth
    text = b"".join(p.read_bytes() for p in sorted(data.rglob("*")) if p.suffix in (".jsonl", ".csv")
                    and p.name != CONTRACT_BREAKS_FILE)
    shipments = [o for p in sorted(data.rglob("*.parquet")) for o in pq.read_table(p).column("order_no").to_pylist()]
    for b in breaks:
        if b["order_id"]:
            assert text.count(b["order_id"].encode()) + shipments.count(b["order_id"]) == 1, b
    truth_orders = {o for day in range(DAYS) for o, _, _ in expected_diffs(data, START + dt.timedelta(days=day))}
    assert not {b["order_id"] for b in breaks} & truth_orders


def _quiet_last_day(data: Path) -> set[tuple[str, str]]:
    """Streams whose file of the last day is empty: in a demo this small (CRM changes are rare) the
    stream-level freshness warning is then right, and it is not a row break."""
    files = json.loads((data / "manifest.json").read_text())["files"]
    return {tuple(rel.split("/")[:2]) for rel, n in files.items() if n == 0 and f"/{LAST.isoformat()}." in rel}


def test_every_break_is_caught_and_nothing_else(checked: tuple) -> None:
    data, _, con, results = checked
    breaks = expected_contract_breaks(data)
    quiet = _quiet_last_day(data)
    by_stream: dict[tuple[str, str], ContractResult] = {(r.system, r.stream): r for r in results}
    assert len(by_stream) == 6
    for (system, stream), result in by_stream.items():
        assert result.error is None and not result.drift, result.messages()
        assert not result.blocking, result.messages()
        wanted = {b["rule_id"] for b in breaks if (b["system"], b["stream"]) == (system, stream)}
        row_failures = {o.rule_id: o for o in result.failures if o.quarantine}
        assert set(row_failures) == wanted, result.messages()
        assert all(o.unexpected_count == 1 and o.quarantined == 1 for o in row_failures.values())
        assert result.quarantined_rows == len(wanted)
        for other in (o for o in result.failures if not o.quarantine):
            # The demo's ERP document exported twice is the duplicate_record diff: reported, kept.
            # Freshness warns only where the last day's file had no rows.
            assert (other.rule_id, system) == ("unique_key_per_sync", "erp") or (
                other.rule_id == "freshness" and (system, stream) in quiet), result.messages()

    quarantine = con.execute(
        "select system, stream, rule_id, column_name, failing_value, _airbyte_raw_id "
        "from recon_meta.contract_quarantine order by all").fetchall()
    assert sorted((s, t, r, c) for s, t, r, c, _, _ in quarantine) == sorted(
        (b["system"], b["stream"], b["rule_id"], b["column"]) for b in breaks)
    for system, stream, rule_id, column, failing, raw_id in quarantine:
        (b,) = [b for b in breaks if (b["system"], b["stream"], b["rule_id"]) == (system, stream, rule_id)]
        assert _landed(con, system, stream, raw_id, b["match_column"]) == b["match_value"]
        if b["rule_id"].startswith("key_not_null"):
            assert failing is None and _landed(con, system, stream, raw_id, column) is None
        elif b["rule_id"].startswith("timestamp_not_future"):
            assert failing.startswith(b["failing_value"][:10])
        else:
            assert failing == b["failing_value"]

    violations = con.execute(
        "select system, stream, level, row_key, order_id, column_name, rule_id, severity, as_of_date "
        "from recon_meta.contract_violations where level = 'row'").fetchall()
    assert sorted(v[:7] for v in violations) == sorted(
        (b["system"], b["stream"], "row", b["row_key"], b["order_id"] or None, b["column"], b["rule_id"])
        for b in breaks)
    assert {(v[7], v[8]) for v in violations} == {("warning", LAST)}
    stream_level = con.execute(
        "select system, stream, rule_id from recon_meta.contract_violations where level <> 'row'").fetchall()
    assert all(rule == "freshness" and (system, stream) in quiet for system, stream, rule in stream_level)


def test_breaks_become_contract_violation_exceptions(checked: tuple) -> None:
    data, config, con, _ = checked
    breaks = expected_contract_breaks(data)
    stream_level = {f"<{system}.{stream}>" for system, stream in _quiet_last_day(data)}
    diffs = [d for d in contract_violation_diffs(con, LAST, config) if d["order_id"] not in stream_level]
    assert len(diffs) == len(breaks)
    assert {d["diff_type"] for d in diffs} == {"contract_violation"}
    subjects = {(d["order_id"], d["system"]) for d in diffs}
    for b in breaks:
        if b["order_id"] or b["row_key"]:
            subject = b["order_id"] or f"<{b['system']}.{b['stream']}:{b['row_key']}>"
            assert (subject, b["system"]) in subjects
        else:  # no key: named by its file and position, so a second such row is its own exception
            prefix = f"<{b['system']}.{b['stream']}: no key, "
            assert any(s.startswith(prefix) and Path(b["file"]).name in s and system == b["system"]
                       for s, system in subjects), (b, subjects)


def _text_rows(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_without_breaks_only_the_appended_rows_differ(tmp_path: Path, rules: dict) -> None:
    with_breaks, without = tmp_path / "with", tmp_path / "without"
    generate(with_breaks, **ARGS, rules=rules)
    (without / CONTRACT_BREAKS_FILE).parent.mkdir(parents=True)
    (without / CONTRACT_BREAKS_FILE).write_text("left over\n")  # from an earlier run: removed
    summary = generate(without, **ARGS, rules=rules, contract_breaks=False)
    assert summary.contract_breaks == 0
    assert not (without / CONTRACT_BREAKS_FILE).exists()
    assert expected_contract_breaks(without) == []
    breaks = expected_contract_breaks(with_breaks)
    assert len(breaks) == 6

    for name in ("ground_truth.csv", "stale.csv"):
        assert (with_breaks / name).read_bytes() == (without / name).read_bytes()
    for day in range(DAYS):
        as_of = START + dt.timedelta(days=day)
        assert expected_diffs(with_breaks, as_of) == expected_diffs(without, as_of)

    touched = {b["file"] for b in breaks}
    files = sorted(p.relative_to(without).as_posix() for p in without.rglob("*") if p.is_file() and "/" in
                   p.relative_to(without).as_posix())
    assert files == sorted(p.relative_to(with_breaks).as_posix() for p in with_breaks.rglob("*")
                           if p.is_file() and "/" in p.relative_to(with_breaks).as_posix())
    for rel in files:
        a, b = with_breaks / rel, without / rel
        assert a.stat().st_mtime_ns == b.stat().st_mtime_ns, rel
        if rel not in touched:
            assert a.read_bytes() == b.read_bytes(), rel
        elif rel.endswith(".parquet"):
            rows_a, rows_b = pq.read_table(a).to_pylist(), pq.read_table(b).to_pylist()
            assert rows_a[:-1] == rows_b and len(rows_a) == len(rows_b) + 1, rel
        else:
            rows_a, rows_b = _text_rows(a), _text_rows(b)
            assert rows_a[:-1] == rows_b and len(rows_a) == len(rows_b) + 1, rel
