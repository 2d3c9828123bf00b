"""Bad input at landing, one class at a time, each with the outcome docs/contracts.md ("Bad input") promises.

Every fixture file is written here, small and by hand (never by the demo generator). Classes that only
concern landing are landed by the real file_drop connector into a real DuckDB file and checked in the
raw and quarantine tables; for every landing, rows in = rows landed + rows quarantined (the quarantine's
``records`` add up to the latter). The classes whose outcome is an exception, a diff or a contract
result run through one real nightly (``run_days``: landing, contracts, dbt, exceptions) on one small
config that holds all of them at once, and then once more after the files are re-exported corrected.
"""

from __future__ import annotations

import json
import os
import shlex
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_deliveries import SYSTEMS

from dagster_project.config.model import ConfigError as ReconConfigError
from dagster_project.config.model import load_config
from ingestion.connectors import stream_for
from ingestion.protocol import ConfigError
from ingestion.sync import SyncResult, sync_stream

DAY = date(2026, 11, 2)
NEXT = date(2026, 11, 3)

# The field mappings of the delivery tests' web shop (CSV) and payment gateway (JSONL, minor units).
ORDER_FIELDS, PAY_FIELDS = SYSTEMS["webshop"][5], SYSTEMS["paygate"][5]
EVIL = "SO-X'; drop table x; --"
ORDERS_HEADER = "Ref,Buyer,State,Cur,Gross,Lines,PlacedAt,ChangedAt"


def at(hour: int, day: date = DAY) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order(ref: str, gross: str = "10.00", *, buyer: str = "K1", cur: str = "eur", placed: str | None = None) -> str:
    return f"{ref},{buyer},open,{cur},{gross},1,{placed or at(9)},{placed or at(9)}"


def txn(txn_id: str, ref: str, cents: Any, when: str | None = None) -> dict[str, Any]:
    return {"txn_id": txn_id, "order_ref": ref, "kind": "CAPTURE", "result": "ok", "ccy": "eur",
            "amount_minor": cents, "at": when or at(10)}


def write(path: Path, data: str | bytes, hour: int = 20, day: date = DAY) -> Path:
    """A delivered file, modified at ``hour`` UTC of ``day``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    stamp = datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def jsonl(*records: dict[str, Any] | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def csv(*rows: str, header: str = ORDERS_HEADER) -> str:
    return header + "\n" + "".join(r + "\n" for r in rows)


class Landing:
    """One system's folder and DuckDB file, landed by the real file_drop connector."""

    def __init__(self, tmp: Path, fmt: str, fields: dict[str, Any], key: str, glob: str) -> None:
        self.folder = tmp / "drop"
        self.folder.mkdir(parents=True)
        self.system = {"connector": "file_drop", "path": str(self.folder),
                       "streams": {"s": {"format": fmt, "glob": glob, "primary_key": [key], "fields": fields}}}
        self.con = duckdb.connect(str(tmp / "wh.duckdb"))

    def land(self) -> SyncResult:
        result = sync_stream(self.con, stream_for("t", self.system, "s"))
        assert result.records_read == result.records_landed + result.records_quarantined
        in_quarantine = self.q(f"select coalesce(sum(records), 0) from recon_meta.quarantine where sync_id = {result.sync_id}")
        assert in_quarantine[0][0] == result.records_quarantined
        if result.records_landed:
            landed = self.q(f"select count(*) from raw_t.s where _airbyte_raw_id like '{result.sync_id}-%'")
            assert landed[0][0] == result.records_landed
        return result

    def q(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def quarantine(self) -> list[dict[str, Any]]:
        cursor = self.con.execute("select file_path, line_number, column_name, failing_value, records, reason "
                                  "from recon_meta.quarantine order by sync_id, file_path, line_number nulls first")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def column_type(self, column: str) -> str:
        return self.q(f"select data_type from duckdb_columns() where schema_name = 'raw_t' and table_name = 's' "
                      f"and column_name = '{column}'")[0][0]


@pytest.fixture
def payments(tmp_path: Path) -> Landing:
    return Landing(tmp_path / "payments", "jsonl", PAY_FIELDS, "txn_id", "*.jsonl")


@pytest.fixture
def orders(tmp_path: Path) -> Landing:
    return Landing(tmp_path / "orders", "csv", ORDER_FIELDS, "Ref", "*.csv")


# ---- one file, one class: landing only ------------------------------------------------------------


def test_malformed_jsonl_line_is_quarantined_with_its_line(payments: Landing) -> None:
    write(payments.folder / "a.jsonl", jsonl(txn("T1", "W1", 100), '{"txn_id": "T2", "order_', txn("T3", "W3", 300)))
    r = payments.land()
    assert (r.records_read, r.records_landed, r.records_quarantined) == (3, 2, 1)
    [q] = payments.quarantine()
    assert (q["line_number"], q["reason"], q["records"]) == (2, "malformed JSON", 1)


def test_csv_row_with_wrong_column_count_is_quarantined_with_its_line(orders: Landing) -> None:
    write(orders.folder / "a.csv", csv(order("W1"), order("W2") + ",extra", order("W3")))
    r = orders.land()
    assert (r.records_landed, r.records_quarantined) == (2, 1)
    [q] = orders.quarantine()
    assert q["line_number"] == 3 and q["reason"].startswith("TOO MANY COLUMNS")


def test_invalid_utf8_is_quarantined_with_its_line(orders: Landing, payments: Landing) -> None:
    write(orders.folder / "a.csv", csv(order("W1"), order("W2", buyer="K\xff"), order("W3")).encode("latin-1"))
    r = orders.land()
    assert (r.records_landed, r.records_quarantined) == (2, 1)
    [q] = orders.quarantine()
    assert q["line_number"] == 3 and q["reason"].startswith("INVALID ENCODING")


def test_text_in_a_minor_amount_is_quarantined_as_a_row_not_a_retyped_column(payments: Landing) -> None:
    # The stream's first file: the mapping declares the minor-unit amount an integer.
    write(payments.folder / "d1.jsonl", jsonl(txn("T1", "W1", 100), txn("T2", "W2", "twelve"), txn("T3", "W3", "300")))
    r = payments.land()
    assert (r.records_landed, r.records_quarantined) == (2, 1)
    assert payments.column_type("amount_minor") == "BIGINT"
    [q] = payments.quarantine()
    assert (q["line_number"], q["column_name"], q["failing_value"]) == (2, "amount_minor", "twelve")
    assert "does not cast to BIGINT" in q["reason"] and q["reason"].endswith(": twelve")
    assert payments.q("select txn_id, amount_minor from raw_t.s order by 1") == [("T1", 100), ("T3", 300)]
    # A later file with one text amount (and a fraction of a cent): rows quarantined, the type kept.
    write(payments.folder / "d2.jsonl", jsonl(txn("T4", "W4", 400), txn("T5", "W5", "n/a"), txn("T6", "W6", 12.5)))
    r = payments.land()
    assert (r.records_landed, r.records_quarantined, r.schema_changes) == (1, 2, [])
    assert payments.column_type("amount_minor") == "BIGINT"
    # The corrected re-export (same name, new content) lands whole, still BIGINT.
    write(payments.folder / "d2.jsonl", jsonl(txn("T4", "W4", 400), txn("T5", "W5", 500), txn("T6", "W6", 1250)), hour=21)
    r = payments.land()
    assert (r.records_landed, r.records_quarantined) == (3, 0)
    assert payments.column_type("amount_minor") == "BIGINT"


def test_a_file_missing_a_mapped_column_is_rejected_whole_with_one_reason(orders: Landing) -> None:
    write(orders.folder / "d1.csv", csv(order("W1"), order("W2")))
    assert orders.land().records_landed == 2
    no_cur = ORDERS_HEADER.replace("Cur,", "")
    rows = [",".join(p for i, p in enumerate(order(f"W{n}").split(",")) if i != 3) for n in range(3, 8)]
    write(orders.folder / "d2.csv", csv(*rows, header=no_cur))
    r = orders.land()
    assert (r.records_landed, r.records_quarantined, r.files_failed) == (0, 5, 1)
    [q] = orders.quarantine()
    assert (q["line_number"], q["column_name"], q["records"]) == (None, "Cur", 5)
    assert q["file_path"].endswith("d2.csv") and q["reason"].startswith("missing column Cur:")
    assert any("d2.csv: missing column Cur" in e for e in r.errors)
    assert orders.q("select count(*) from raw_t.s")[0][0] == 2


def test_a_file_renaming_a_mapped_column_is_rejected_and_adds_no_column(orders: Landing) -> None:
    write(orders.folder / "d1.csv", csv(order("W1")))
    orders.land()
    write(orders.folder / "d2.csv", csv(order("W2"), order("W3"), header=ORDERS_HEADER.replace("Cur,", "Currency,")))
    r = orders.land()
    assert (r.records_landed, r.records_quarantined) == (0, 2)
    [q] = orders.quarantine()
    assert q["reason"].startswith("missing column Cur:") and "Currency" in q["reason"]
    columns = {c for (c,) in orders.q("select column_name from duckdb_columns() where table_name = 's'")}
    assert "Currency" not in columns


def test_a_parquet_file_retyping_a_mapped_column_is_rejected_whole(tmp_path: Path) -> None:
    fields = {"fulfillment_id": "ship_id", "order_id": "ref", "line_count": {"from": "qty_lines", "type": "integer"}}
    p = Landing(tmp_path, "parquet", fields, "ship_id", "*.parquet")
    pq.write_table(pa.table({"ship_id": ["S1", "S2"], "ref": ["W1", "W2"], "qty_lines": [1, 2]}), p.folder / "d1.parquet")
    p.land()
    assert p.column_type("qty_lines") == "BIGINT"
    # Whole numbers as text cast and land typed; text that is no number anywhere in the file: rejected.
    pq.write_table(pa.table({"ship_id": ["S3"], "ref": ["W3"], "qty_lines": ["3"]}), p.folder / "d2.parquet")
    pq.write_table(pa.table({"ship_id": ["S4", "S5"], "ref": ["W4", "W5"], "qty_lines": ["two", "one"]}),
                   p.folder / "d3.parquet")
    r = p.land()
    assert (r.records_landed, r.records_quarantined) == (1, 2)
    assert p.column_type("qty_lines") == "BIGINT"
    assert p.q("select ship_id, qty_lines from raw_t.s order by 1") == [("S1", 1), ("S2", 2), ("S3", 3)]
    [q] = p.quarantine()
    assert q["file_path"].endswith("d3.parquet") and q["records"] == 2 and q["column_name"] == "qty_lines"
    assert q["reason"].startswith("retyped column qty_lines: no value of it casts to the stream's BIGINT")


def test_null_and_duplicate_keys_land_for_the_contract_and_the_reconciliation(orders: Landing) -> None:
    write(orders.folder / "a.csv", csv(order(""), order(""), order("W1"), order("W1")))
    r = orders.land()
    assert (r.records_landed, r.records_quarantined) == (4, 0)  # key_not_null / duplicate_record decide


def test_amounts_far_too_large_and_large_legitimate_ones(orders: Landing, payments: Landing) -> None:
    write(orders.folder / "a.csv", csv(order("W1", "1e30"), order("W2", "1000000000000.1234")))
    orders.land()
    assert orders.q("select Gross from raw_t.s order by Ref") == [("1e30",), ("1000000000000.1234",)]  # exact text
    write(payments.folder / "a.jsonl", jsonl(txn("T1", "W1", 1e30), txn("T2", "W2", 100000000000000)))
    r = payments.land()
    assert (r.records_landed, r.records_quarantined) == (1, 1)  # 1e30 cents is no whole number a BIGINT holds
    assert payments.q("select amount_minor from raw_t.s") == [(100000000000000,)]
    assert payments.column_type("amount_minor") == "BIGINT"


def test_sql_looking_ids_land_verbatim(orders: Landing) -> None:
    write(orders.folder / "a.csv", csv(order(f'"{EVIL}"'), order('"W2"""')))
    assert orders.land().records_landed == 2
    assert orders.q("select Ref from raw_t.s order by Ref") == [(EVIL,), ('W2"',)]


def test_empty_zero_byte_and_header_only_files_land_nothing(orders: Landing, payments: Landing) -> None:
    write(orders.folder / "zero.csv", b"")
    write(orders.folder / "header.csv", csv())
    r = orders.land()
    assert (r.files_seen, r.records_read, r.records_landed) == (2, 0, 0)
    assert orders.q("select sum(records_landed) from recon_meta.landed_files") == [(0,)]
    write(payments.folder / "blank.jsonl", "\n\n")
    r = payments.land()
    assert (r.records_read, r.records_quarantined) == (0, 0)


def test_a_missing_source_folder_fails_naming_system_stream_and_path(tmp_path: Path) -> None:
    system = {"connector": "file_drop", "path": str(tmp_path / "nowhere"),
              "streams": {"s": {"format": "csv", "glob": "*.csv", "primary_key": ["Ref"], "fields": ORDER_FIELDS}}}
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(ConfigError, match=r"system 't', stream 's': path '.*nowhere' does not exist"):
        sync_stream(con, stream_for("t", system, "s"))
    assert con.execute("select status, error from recon_meta.sync_runs").fetchall()[0][0] == "failed"


def test_a_bad_cron_fails_config_validate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dagster_project.cli import cli

    path = tmp_path / "recon.yaml"
    path.write_text(config_yaml(tmp_path, cron="0 25 * * *"))
    with pytest.raises(ReconConfigError, match=r"project.schedule.cron .*expected a cron expression"):
        load_config(path)
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "validate"], obj={}, env={})
    assert result.exit_code != 0 and "project.schedule.cron" in result.output
    path.write_text(config_yaml(tmp_path))
    assert CliRunner().invoke(cli, ["--config", str(path), "config", "validate"], obj={}, env={}).exit_code == 0


def test_a_sql_looking_id_is_quoted_in_notification_timeline_links(tmp_path: Path) -> None:
    from dagster_project.notifications.outbox import _link

    path = tmp_path / "recon.yaml"
    path.write_text(config_yaml(tmp_path))
    exception = {"order_id": EVIL, "exception_id": "0123abcd"}
    assert _link(load_config(path), exception) is None  # no URL: messages carry `recon exceptions show <hex id>`
    path.write_text(config_yaml(tmp_path) + "notifications:\n  timeline_url: https://r.example/orders/{order_id}\n")
    assert _link(load_config(path), exception) == "https://r.example/orders/SO-X%27%3B%20drop%20table%20x%3B%20--"


# ---- every class at once, through one real nightly ------------------------------------------------


def config_yaml(root: Path, cron: str = "0 2 * * *") -> str:
    systems = {
        "shop": {"role": "orders", "path": str(root / "data" / "shop"), "freshness_hours": 48, "streams": {
            "sales": {"format": "csv", "glob": "*.csv", "primary_key": ["Ref"], "fields": ORDER_FIELDS}}},
        "gate": {"role": "payments", "path": str(root / "data" / "gate"), "freshness_hours": 48, "streams": {
            "txns": {"format": "jsonl", "glob": "*.jsonl", "primary_key": ["txn_id"], "fields": PAY_FIELDS}}},
    }
    cfg = {
        "version": 1,
        "project": {"name": "badin", "duckdb_path": str(root / "wh.duckdb"), "state_dir": str(root / "state"),
                    "start_date": str(DAY), "schedule": {"cron": cron}},
        "systems": systems,
        "rules": {"grace_hours": {"missing_payment": 0, "missing_invoice": 24, "orphan_record": 0,
                                  "status_conflict": 0, "amount_mismatch": 0}},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


LARGE = "1000000000000.1200"  # 10^12 with 4 decimals, a whole number of cents
FUTURE = "2099-12-31T00:00:00Z"


def deliver(data: Path, *, corrected: bool) -> None:
    """Every bad-input class at once in two systems' files; ``corrected``: the same files re-exported right."""
    sales = [order("W1"), order("W2"), order(f'"{EVIL}"'), order("W3"), order("W3"),
             order("W4", placed=FUTURE), order("W5", "1e30"), order("W6", LARGE), order("W13", LARGE)]
    if corrected:
        sales += [order("W9"), order("W10"), order("W11"), order("W12")]
    else:
        sales += [order(""), order("", buyer="K2"), order("W11") + ",1,2", order("W12", buyer="K\xff")]
    day = NEXT if corrected else DAY  # re-exported the next evening
    write(data / "shop" / "d1.csv", csv(*sales).encode("latin-1"), day=day)
    header = ORDERS_HEADER if corrected else ORDERS_HEADER.replace("Cur,", "")
    rows = [order("W7"), order("W8")]
    if not corrected:
        rows = [",".join(p for i, p in enumerate(r.split(",")) if i != 3) for r in rows]
    write(data / "shop" / "d2.csv", csv(*rows, header=header), day=day)
    # W13 paid half of its 10^12: an amount_mismatch whose money at risk no DECIMAL(9,4) holds (the night
    # that once crashed in the exceptions step), delivered again the next night.
    txns = [txn("T1", "W1", 1000), txn("T2", "W2", 1000), txn("T6", "W6", 100000000000012),
            txn("T13", "W13", 50000000000006),
            txn("T7", "W7", 1000), txn("T8", "W8", 1000), txn("T11", "W11", 1000), txn("T12", "W12", 1000),
            txn("T3", "W3", 1000 if corrected else "ten euros"),
            txn("T4", "W4", 1000) if corrected else '{"txn_id": "T4", "order_ref": "W4", "amo']
    # The payments export is restored in place with its old modification time (the corrected re-export
    # that once doubled a stream): it is a new delivery of the same versions, never a duplicate.
    write(data / "gate" / "d1.jsonl", jsonl(*txns), day=DAY)


def exceptions(db: Path) -> dict[str, dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute("select * from recon.exceptions")
        names = [d[0] for d in cursor.description]
        return {r[names.index("order_id")] + "|" + r[names.index("diff_type")]: dict(zip(names, r, strict=True))
                for r in cursor.fetchall()}
    finally:
        con.close()


def large_at_risk(db: Path, day: date) -> str:
    """W13's money at risk as the diff mart computed it (text, so nothing is rounded on the way)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select amount_at_risk::varchar from marts.fct_order_diffs where order_id = 'W13' "
                           "and diff_type = 'amount_mismatch' and as_of_date = ?", [day]).fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.slow
def test_every_class_at_once_through_the_nightly_then_corrected(tmp_path: Path, recon_home: Path) -> None:
    from dagster_project.reports.run_summary import build_summary
    from dagster_project.runs.runner import run_days

    path = tmp_path / "recon.yaml"
    path.write_text(config_yaml(tmp_path))
    expectations = tmp_path / "state" / "expectations"
    expectations.mkdir(parents=True)
    (expectations / "overrides.yml").write_text("defaults:\n  amount_max: 10000000000000\n")  # 10^13: B2B
    config = load_config(path)
    deliver(tmp_path / "data", corrected=False)
    lines: list[str] = []
    [night] = run_days(config, [DAY], echo=lines.append)
    assert night.success, "\n".join(lines)

    con = duckdb.connect(str(config.duckdb_path), read_only=True)
    try:
        runs = con.execute("select system, records_read, records_landed, records_quarantined from recon_meta.sync_runs "
                           "where status like 'succeeded%'").fetchall()
        assert {r[0]: r[1:] for r in runs} == {"shop": (15, 11, 4), "gate": (10, 8, 2)}  # in = landed + quarantined
        assert con.execute("select data_type from duckdb_columns() where table_name = 'txns' "
                           "and column_name = 'amount_minor'").fetchall() == [("BIGINT",)]
        diffs = {(o, t, s): c for o, t, s, c in con.execute(
            "select order_id, diff_type, system, reproduce_command from marts.fct_order_diffs "
            f"where as_of_date = date '{DAY}'").fetchall()}
        assert build_summary(con, config, DAY).quarantined == 6  # a rejected file counts its rows
    finally:
        con.close()
    ex = exceptions(config.duckdb_path)
    landing = {k: v for k, v in ex.items() if v["rule"] == "landing quarantine"}
    # Connector quarantines: one exception per file and reason, with the count; nothing vanishes.
    assert {k.split("|")[0]: json.loads(v["actual_value"])["rows_not_landed"] for k, v in landing.items()} == {
        "<shop.sales: d1.csv: TOO MANY COLUMNS>": 1,
        "<shop.sales: d1.csv: INVALID ENCODING>": 1,
        "<shop.sales: d2.csv: missing column Cur>": 2,  # the file rejected whole: one exception, not one per row
        "<gate.txns: d1.jsonl: malformed JSON>": 1,
        "<gate.txns: d1.jsonl: column amount_minor>": 1,
    }
    assert all(v["status"] == "open" and v["owner"] for v in landing.values())
    # Two rows without a key: two exceptions, neither absorbed into the other.
    keyless = [k for k in ex if k.startswith("<shop.sales: no key, d1.csv record ")]
    assert len(keyless) == 2, sorted(ex)
    # Contract row rules: the timestamp far in the future and the absurd amount; the large amount passes.
    assert "PlacedAt is not later than the sync" in ex["W4|contract_violation"]["expected_value"]
    assert "Gross is non-negative and at most 1e+13" in ex["W5|contract_violation"]["expected_value"]
    assert not [d for d in diffs if d[0] == "W6"] and "W6|contract_violation" not in ex
    # A large amount at risk goes through the exceptions step exactly (typed writes, never inferred).
    assert str(ex["W13|amount_mismatch"]["amount_at_risk"]) == large_at_risk(config.duckdb_path, DAY)
    assert ex["W13|amount_mismatch"]["amount_at_risk"] >= 10**11
    # A duplicate key is the reconciliation's finding; a SQL-looking id is quoted for the shell.
    assert ("W3", "duplicate_record", "shop") in diffs
    [command] = [c for (o, _, _), c in diffs.items() if o == EVIL]
    assert shlex.split(command)[:3] == ["recon", "order", EVIL]

    # The same files re-exported corrected: the next night passes and the landing exceptions resolve.
    deliver(tmp_path / "data", corrected=True)
    [night] = run_days(config, [NEXT], echo=lines.append)
    assert night.success, "\n".join(lines)
    after = exceptions(config.duckdb_path)
    assert {after[k]["status"] for k in landing} == {"auto_resolved"}
    con = duckdb.connect(str(config.duckdb_path), read_only=True)
    try:  # the re-sent payments and orders are no duplicates: only W3, sold twice in one file, is one
        assert con.execute("select order_id, system from marts.fct_order_diffs where diff_type = 'duplicate_record' "
                           "and as_of_date = ?", [NEXT]).fetchall() == [("W3", "shop")]
        assert con.execute("select count(*) from recon_meta.landed_files where file_path like '%gate%d1.jsonl'"
                           ).fetchall() == [(2,)]  # the restored file did land again
    finally:
        con.close()
    assert str(after["W13|amount_mismatch"]["amount_at_risk"]) == large_at_risk(config.duckdb_path, NEXT)
    assert {after[k]["status"] for k in ("W7|orphan_record", "W11|orphan_record")} == {"auto_resolved"}
    con = duckdb.connect(str(config.duckdb_path), read_only=True)
    try:
        assert con.execute("select data_type from duckdb_columns() where table_name = 'txns' "
                           "and column_name = 'amount_minor'").fetchall() == [("BIGINT",)]
    finally:
        con.close()
