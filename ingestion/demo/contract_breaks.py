"""Contract breaks in the demo data: a few extra records that the contract checks must quarantine.

`write_contract_breaks` appends one record per source stream to that stream's file of a day chosen
from the seed. Each record breaks exactly one quarantining row-level rule of the committed suites
(`expectations/expectations/*.json`, see dagster_project/contracts/rules.py):

| stream | what is wrong | rule |
|---|---|---|
| shop/orders | `order_number` is null | `key_not_null:order_number` |
| psp/charges | `status` "disputed" is not in the vocabulary | `accepted_status:status` |
| psp/refunds | `currency` "euro" is not an ISO 4217 code | `currency_iso:currency` |
| erp/documents | `NetAmount` "1.234,56" is not a number | `amount_parseable:NetAmount` |
| wms/shipments | `event_time` is 2099-12-31 (a placeholder far in the future) | `timestamp_not_future:event_time` |
| crm/accounts | `AccountId` is empty | `key_not_null:AccountId` |

The records belong to no real order: the ones that carry an order id use `SO-8` plus 7 digits (real
orders are `SO-` plus 7 digits, orphans `SO-9` plus 7 digits), and their ids, document numbers and
shipment references have shapes no other record has. The shop order has no number and the CRM row
no id, so no real order or account gets another version. Quarantined, they leave every
reconciliation diff of `ground_truth.csv` as it is; not quarantined, they could only add diffs about
themselves (e.g. `SO-8...` orphans), never change another order's. `contract_breaks.csv` lists them;
`expected_contract_breaks` reads it back.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta
from pathlib import Path

from ingestion.demo.records import Sink, money
from ingestion.demo.timefmt import STORE_TZ, Clock
from ingestion.demo.writers import EXTENSIONS, write_parquet_rows

CONTRACT_BREAKS_FILE = "contract_breaks.csv"
#: A placeholder date some warehouse systems write for "not known yet": far in the future.
FUTURE_PLACEHOLDER_TS = 4102444799  # 2099-12-31T23:59:59Z
_DAY = 86400


@dataclass(frozen=True)
class ContractBreak:
    """One injected record that breaks one row-level contract rule (a row of contract_breaks.csv).

    Attributes:
        system: the source system.
        stream: the stream of that system.
        file: the file holding the record, relative to the output folder (posix).
        row_key: the record's primary key value; empty when the missing key is the break.
        order_id: the order id the record carries (`SO-8...`); empty when it has none.
        match_column: a source column that identifies the record in the landed table
            (the primary key, or for a record without one another column of it).
        match_value: that column's value in the record, as text.
        column: the broken column.
        rule_id: the contract rule expected to quarantine the record.
        failing_value: the broken value as written in the file; empty for a missing value.
        as_of_date: the as-of day of the record's file (its first visible day), ISO.
        description: what is wrong, in words.
    """

    system: str
    stream: str
    file: str
    row_key: str
    order_id: str
    match_column: str
    match_value: str
    column: str
    rule_id: str
    failing_value: str
    as_of_date: str
    description: str


HEADER = tuple(f.name for f in fields(ContractBreak))


def _pick_day(rng: random.Random, days: int, gaps: set[int]) -> int | None:
    open_days = [d for d in range(days) if d not in gaps]
    return rng.choice(open_days) if open_days else None


def write_contract_breaks(
    out_dir: Path,
    sink: Sink,
    clock: Clock,
    *,
    seed: int,
    start_date: date,
    days: int,
    customers: int,
    files: dict[str, int],
) -> list[ContractBreak]:
    """Append the contract-breaking records to the written stream files and write contract_breaks.csv.

    Uses its own random generator (derived from `seed`), so the rest of the data set is the same
    with and without the breaks. Each touched file keeps its mtime; `files` (rows per file) is
    updated in place.

    Args:
        out_dir: the output root (the stream files are already written).
        sink: the collected records (for the window start, the outages and the WMS rows).
        clock: the generation run's clock (native time formats).
        seed: the generation seed.
        start_date: the first day of the window.
        days: number of days in the window.
        customers: customers that exist before the window (CUS-000001 .. this number).
        files: rows per written file, keyed by the path relative to `out_dir`.

    Returns:
        The breaks written, in stream order.
    """
    rng = random.Random(f"contract-breaks/{seed}")
    breaks: list[ContractBreak] = []
    suffix = f"{rng.randrange(1 << 36):09x}"  # one random-looking tail for this data set's ids

    def place(stream: str) -> tuple[int, int, str, date] | None:
        """(day index, a time inside that UTC day, the file's relative path, its date)."""
        system = stream.split("/", 1)[0]
        day = _pick_day(rng, days, sink.outages.get(system, set()))
        if day is None:
            return None
        ts = sink.start_ts + day * _DAY + rng.randrange(2 * 3600, 20 * 3600)
        when = start_date + timedelta(days=day)
        return day, ts, f"{stream}/{when.isoformat()}.{EXTENSIONS[stream]}", when

    def customer() -> str:
        return f"CUS-{rng.randint(1, max(1, customers)):06d}"

    def record(stream: str, when: date, rel: str, **values: str) -> None:
        system, name = stream.split("/", 1)
        breaks.append(
            ContractBreak(system=system, stream=name, file=rel, as_of_date=when.isoformat(), **values)
        )

    def append_line(rel: str, day: int, line: str) -> None:
        path = out_dir / rel
        with open(path, "ab") as fh:
            fh.write((line + "\n").encode("utf-8"))
        _keep_mtime(path, sink.start_ts, day)
        files[rel] = files.get(rel, 0) + 1

    # shop/orders: an order without its number (key_not_null). Identified by its created_at.
    spot = place("shop/orders")
    if spot is not None:
        day, ts, rel, when = spot
        cur = rng.choice(("EUR", "USD", "GBP"))
        tz = STORE_TZ[cur]
        qty, price = rng.randint(1, 3), rng.randrange(199, 9999) // 10 * 10 + 9
        created = clock.iso_local(ts, tz)
        total = money(qty * price)
        lines = (
            f'[{{"sku": "SKU-{rng.randint(1, 400):05d}", "qty": {qty}, "unit_price": "{money(price)}", '
            f'"line_total": "{total}"}}]'
        )
        number = rng.randint(1, max(1, customers))
        append_line(
            rel,
            day,
            (
                f'{{"order_number": null, "customer": {{"id": "CUS-{number:06d}", '
                f'"email": "customer{number:06d}@example.com"}}, "state": "placed", "currency": "{cur}", '
                f'"total": "{total}", "lines": {lines}, "created_at": "{created}", "updated_at": "{created}"}}'
            ),
        )
        record(
            "shop/orders",
            when,
            rel,
            row_key="",
            order_id="",
            match_column="created_at",
            match_value=created,
            column="order_number",
            rule_id="key_not_null:order_number",
            failing_value="",
            description="storefront order exported without its order_number",
        )

    # psp/charges: a status word outside the vocabulary (accepted_status).
    spot = place("psp/charges")
    if spot is not None:
        day, ts, rel, when = spot
        charge_id, order_id = f"ch_x{suffix}", "SO-80000001"
        append_line(
            rel,
            day,
            (
                f'{{"id": "{charge_id}", "object": "charge", "amount": {rng.randrange(500, 50000)}, "currency": "eur", '
                f'"status": "disputed", "customer": "{customer()}", "metadata": {{"order_id": "{order_id}"}}, '
                f'"created": {ts - 600}, "updated": {ts}}}'
            ),
        )
        record(
            "psp/charges",
            when,
            rel,
            row_key=charge_id,
            order_id=order_id,
            match_column="id",
            match_value=charge_id,
            column="status",
            rule_id="accepted_status:status",
            failing_value="disputed",
            description="charge status 'disputed' is not in the status vocabulary",
        )

    # psp/refunds: a currency that is not an ISO 4217 code (currency_iso).
    spot = place("psp/refunds")
    if spot is not None:
        day, ts, rel, when = spot
        refund_id, order_id = f"re_x{suffix}", "SO-80000002"
        append_line(
            rel,
            day,
            (
                f'{{"id": "{refund_id}", "object": "refund", "amount": {rng.randrange(100, 5000)}, "currency": "euro", '
                f'"charge": "ch_y{suffix}", "status": "succeeded", "metadata": {{"order_id": "{order_id}"}}, '
                f'"created": {ts}}}'
            ),
        )
        record(
            "psp/refunds",
            when,
            rel,
            row_key=refund_id,
            order_id=order_id,
            match_column="id",
            match_value=refund_id,
            column="currency",
            rule_id="currency_iso:currency",
            failing_value="euro",
            description="refund currency 'euro' is not an ISO 4217 code",
        )

    # erp/documents: a net amount in German number format, not a number (amount_parseable).
    spot = place("erp/documents")
    if spot is not None:
        day, ts, rel, when = spot
        ts = clock.berlin_unambiguous(ts)
        doc_no, order_id, amount = f"INV-8{rng.randrange(10**8):08d}", "SO-80000003", "1.234,56"
        append_line(
            rel,
            day,
            (
                f'{doc_no},INV,{order_id},{customer()},EUR,"{amount}",POSTED,'
                f"{clock.berlin_date_dmy(ts)},{clock.berlin_wall(ts)}"
            ),
        )
        record(
            "erp/documents",
            when,
            rel,
            row_key=doc_no,
            order_id=order_id,
            match_column="DocNo",
            match_value=doc_no,
            column="NetAmount",
            rule_id="amount_parseable:NetAmount",
            failing_value=amount,
            description="invoice NetAmount '1.234,56' (German number format) is not a number",
        )

    # wms/shipments: a far-future placeholder event time (timestamp_not_future).
    spot = place("wms/shipments")
    if spot is not None:
        day, ts, rel, when = spot
        ref, order_id = f"SHP-8{rng.randrange(10**8):08d}", "SO-80000004"
        rows = [row for _, row in sink.buckets["wms/shipments"].get(day, [])]
        rows.append((ref, order_id, "SHIP", "DISPATCHED", 1, FUTURE_PLACEHOLDER_TS, ts))
        path = out_dir / rel
        write_parquet_rows(path, rows)
        _keep_mtime(path, sink.start_ts, day)
        files[rel] = len(rows)
        record(
            "wms/shipments",
            when,
            rel,
            row_key=ref,
            order_id=order_id,
            match_column="shipment_ref",
            match_value=ref,
            column="event_time",
            rule_id="timestamp_not_future:event_time",
            failing_value="2099-12-31T23:59:59Z",
            description="shipment event_time is the placeholder 2099-12-31, far in the future",
        )

    # crm/accounts: an account row without its id (key_not_null). Identified by its ModifiedDate.
    spot = place("crm/accounts")
    if spot is not None:
        day, ts, rel, when = spot
        modified = clock.iso_z(ts)
        append_line(
            rel, day, f",smb,basic,{rng.choice(('Anna Schmidt', 'Ben Carter', 'Eva Rossi'))},{modified}"
        )
        record(
            "crm/accounts",
            when,
            rel,
            row_key="",
            order_id="",
            match_column="ModifiedDate",
            match_value=modified,
            column="AccountId",
            rule_id="key_not_null:AccountId",
            failing_value="",
            description="CRM account row exported with an empty AccountId",
        )

    write_contract_breaks_csv(out_dir, breaks)
    return breaks


def _keep_mtime(path: Path, start_ts: int, day: int) -> None:
    """Set the file's mtime back to its day's 23:59:59 UTC (the connector's `available_at`)."""
    mtime_ns = (start_ts + day * _DAY + _DAY - 1) * 1_000_000_000
    os.utime(path, ns=(mtime_ns, mtime_ns))


def write_contract_breaks_csv(out_dir: Path, breaks: list[ContractBreak]) -> None:
    """Write contract_breaks.csv (one row per injected break)."""
    with open(Path(out_dir) / CONTRACT_BREAKS_FILE, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        for item in breaks:
            writer.writerow(tuple(asdict(item).values()))


def remove_contract_breaks_csv(out_dir: Path) -> None:
    """Remove a contract_breaks.csv left by an earlier run (a run without breaks writes none)."""
    (Path(out_dir) / CONTRACT_BREAKS_FILE).unlink(missing_ok=True)


def expected_contract_breaks(out_dir: Path) -> list[dict]:
    """The contract breaks the demo in `out_dir` holds (contract_breaks.csv), one dict per record.

    Args:
        out_dir: a directory written by `generate`.

    Returns:
        Dicts with the keys of `ContractBreak` (system, stream, file, row_key, order_id, match_column,
        match_value, column, rule_id, failing_value, as_of_date, description); empty when the data
        was generated with `contract_breaks=False`.
    """
    path = Path(out_dir) / CONTRACT_BREAKS_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [dict(row) for row in csv.DictReader(fh)]
