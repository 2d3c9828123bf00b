"""Generate N orders of the five demo systems as export files, set-based in DuckDB (bench/bench_nightly.py).

Usage:
    .venv/bin/python bench/gen_exports.py --out /tmp/exports --orders 1000000 --days 30
    .venv/bin/python bench/gen_exports.py --out /tmp/exports --next-day   # one more day on that history

The files have exactly the shapes dagster_project/config/demo.yaml maps (point RECON_DEMO_DATA at --out):
shop/orders JSONL (nested customer and lines, local-time offsets), psp/charges and psp/refunds JSONL
(minor units, metadata.order_id, epoch seconds), erp/documents CSV (its own column names, negative credit
notes, Berlin local time, dd.mm.yyyy dates), wms/shipments Parquet, crm/accounts CSV. One file per stream
per day, named YYYY-MM-DD, holding the versions updated that day, with the file's mtime at that day's
23:59:59 UTC; a day on which a stream has no version gets no file.

Every order is a pure function of (order number, seed): order i is placed on day floor(i * days / orders),
its records follow at fixed offsets (charge +1 h, invoice +26 h, shipment +51 h, delivery +99 h, ...), and
a version is written on the UTC day of its update. So `--next-day` writes the file of the day after the last
written one with the orders placed that day and the new versions of older orders (captures, invoices,
deliveries, cancellations, CRM changes), and re-running it on a day already written changes nothing.

Problems of every diff type are injected at the rates of SCENARIOS (per 10,000 orders), next to look-alikes
that are fine (split payments, a partial refund with its credit note, an FX payment within tolerance, a
rounding cent, a failed charge retried, a pending charge captured the next day, a draft invoice posted
later, a cancellation refunded and credited). No ground truth is written: the benchmark compares the
platform with the hand-written script (bench/handwritten_nightly.py), not with the generator.
All event times lie between 05:00 and 20:00 UTC, so no Berlin wall time falls in the autumn DST hour.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingestion.demo.writers import EXTENSIONS as STREAMS  # noqa: E402  (stream -> file format)

META_FILE = "exports.json"
HOUR = 3600
DAY = 86400

# (scenario, orders per 10,000). The rest are "normal": paid, invoiced next day, shipped, delivered.
SCENARIOS: list[tuple[str, int]] = [
    # problems, one block per diff type (sub-variants by order number)
    ("missing_payment", 30),
    ("missing_invoice", 30),
    ("missing_fulfillment", 30),
    ("unpaid_fulfillment", 30),
    ("amount_mismatch_payment", 30),
    ("amount_mismatch_invoice", 30),
    ("duplicate_charge", 20),
    ("duplicate_invoice", 20),
    ("duplicate_shipment", 20),
    ("repeated_key", 20),          # even: an ERP row twice in one file; odd: a charge line twice in one file
    ("orphan", 30),                # %3: charge / invoice / shipment pointing at an order that does not exist
    ("status_conflict_paid", 30),  # cancelled after capture, never refunded; odd: also shipped
    ("status_conflict_refund", 20),  # partial refund without a credit note
    ("currency_mismatch", 30),     # %3: charge in another currency at face value / charge in CHF (no rate) / invoice in another currency
    ("customer_mismatch", 20),     # even: charge names another customer; odd: invoice does
    ("missing_enrichment", 20),    # the order's customer is absent from the CRM (and 1 in 200 accounts lack a segment)
    # look-alikes that must not be diffs
    ("split_payment", 100),
    ("partial_refund_credited", 50),
    ("fx_within_tolerance", 50),
    ("rounding_cent", 50),
    ("retry_after_failure", 50),
    ("pending_then_captured", 50),
    ("draft_then_posted", 50),
    ("cancelled_refunded", 40),
    ("activation", 200),
]

# Days after its order that a record of that order can still change (the delivery at +99 h).
MAX_LAG_DAYS = 5


def scenario_case() -> str:
    """SQL CASE mapping `bucket` (0..9999) to its scenario name."""
    parts, low = [], 0
    for name, rate in SCENARIOS:
        parts.append(f"when bucket < {low + rate} then '{name}'")
        low += rate
    if low > 10_000:
        raise ValueError("SCENARIOS add up to more than 10,000")
    return "case " + " ".join(parts) + " else 'normal' end"


def _macros(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    s = int(seed)
    con.execute(f"create or replace temp macro rnd(i, k) as hash(i, k, {s})")
    # Money as text with two decimals from minor units ('-12.30' for -1230).
    con.execute(
        "create or replace temp macro money(c) as "
        "(case when c < 0 then '-' else '' end) || (abs(c) // 100)::varchar || '.' || lpad((abs(c) % 100)::varchar, 2, '0')"
    )
    # ISO-8601 local time with the zone's offset, e.g. 2026-10-03T09:15:00+02:00.
    con.execute(
        "create or replace temp macro iso_local(ts, tz) as "
        "strftime(timezone(tz, to_timestamp(ts)), '%Y-%m-%dT%H:%M:%S') || "
        "(case when date_diff('minute', timezone('UTC', to_timestamp(ts)), timezone(tz, to_timestamp(ts))) < 0 "
        "then '-' else '+' end) || "
        "lpad((abs(date_diff('minute', timezone('UTC', to_timestamp(ts)), timezone(tz, to_timestamp(ts)))) // 60)::varchar, 2, '0') "
        "|| ':' || "
        "lpad((abs(date_diff('minute', timezone('UTC', to_timestamp(ts)), timezone(tz, to_timestamp(ts)))) % 60)::varchar, 2, '0')"
    )
    con.execute("create or replace temp macro berlin(ts) as timezone('Europe/Berlin', to_timestamp(ts))")
    con.execute(
        "create or replace temp macro iso_z(ts) as strftime(timezone('UTC', to_timestamp(ts)), '%Y-%m-%dT%H:%M:%SZ')"
    )


def build_tables(con: duckdb.DuckDBPyConnection, orders: int, days: int, seed: int, start: dt.date,
                 first_order: int, last_order: int) -> None:
    """Create the temp tables o (orders) and v_<stream> (every version, with its file day) for orders
    first_order <= i < last_order."""
    _macros(con, seed)
    start_ts = int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp())
    con.execute(
        f"""
        create or replace temp table o as
        with base as (
            select
                i,
                floor(i * {days}::double / {orders})::bigint as d,
                (rnd(i, 1) % 10000)::int as bucket,
                (rnd(i, 3) % 100)::int as cur_roll,
                1 + (rnd(i, 4) % 4)::int as n_lines
            from range({first_order}, {last_order}) as t(i)
        )
        select
            *,
            'SO-' || lpad(i::varchar, 9, '0') as order_id,
            {scenario_case()} as scenario,
            {start_ts} + d * {DAY} + 6 * {HOUR} + (rnd(i, 2) % (10 * {HOUR}))::bigint as t0,
            case when cur_roll < 60 then 'EUR' when cur_roll < 85 then 'USD' else 'GBP' end as cur,
            case when cur_roll < 60 then 'Europe/Berlin' when cur_roll < 85 then 'America/New_York'
                 else 'Europe/London' end as tz,
            -- the other currency a foreign payment is made in, and the rate to the order currency
            case when cur_roll < 60 then 'USD' else 'EUR' end as fx_cur,
            case when cur_roll < 60 then 0.92 when cur_roll < 85 then 1.087 else 0.855 end as fx_rate,
            list_transform(range(n_lines), lambda k: {{
                'sku': 'SKU-' || lpad((1 + rnd(i * 8 + k, 5) % 400)::varchar, 5, '0'),
                'qty': (1 + rnd(i * 8 + k, 6) % 3)::int,
                'unit_price': money((500 + rnd(i * 8 + k, 7) % 20000)::bigint),
                'line_total': money(((1 + rnd(i * 8 + k, 6) % 3) * (500 + rnd(i * 8 + k, 7) % 20000))::bigint)
            }}) as lines,
            list_sum(list_transform(range(n_lines),
                lambda k: ((1 + rnd(i * 8 + k, 6) % 3) * (500 + rnd(i * 8 + k, 7) % 20000))::bigint))::bigint as total,
            'CU-' || lpad((i // 3)::varchar, 8, '0') as crm_customer
        from base
        """
    )
    con.execute(
        f"""
        create or replace temp table v_orders as
        with versions as (
            select *, t0 as u, case when i % 7 = 0 then 'open' else 'placed' end as state from o
            union all
            select *, t0 + 30 * {HOUR}, case when i % 2 = 0 then 'cancelled' else 'canceled' end
            from o where scenario in ('status_conflict_paid', 'cancelled_refunded')
            union all  -- a changed version with the same figures (an address edit)
            select *, t0 + 20 * {HOUR}, 'placed' from o where i % 25 = 0 and scenario = 'normal'
        )
        select
            (u - {start_ts}) // {DAY} as day, u as sort_ts, 1 as copies,
            order_id as order_number,
            {{'id': case when scenario = 'missing_enrichment' then 'CU-NEW-' || i::varchar else crm_customer end,
              'email': 'customer' || (i // 3)::varchar || '@example.com'}} as customer,
            state, cur as currency, money(total) as total, lines,
            iso_local(t0, tz) as created_at, iso_local(u, tz) as updated_at
        from versions
        """
    )
    con.execute(
        f"""
        create or replace temp table v_charges as
        with c as (
            -- the first charge
            select o.*, 1 as n,
                case scenario when 'amount_mismatch_payment' then total + 500 when 'rounding_cent' then total + 1
                     when 'split_payment' then total // 2
                     when 'fx_within_tolerance' then round(total / fx_rate)::bigint
                     else total end as amount,
                case when scenario = 'fx_within_tolerance' or (scenario = 'currency_mismatch' and i % 3 = 0) then fx_cur
                     when scenario = 'currency_mismatch' and i % 3 = 1 then 'CHF' else cur end as ccy,
                case scenario when 'retry_after_failure' then 'failed' when 'pending_then_captured' then 'pending'
                     else 'succeeded' end as status,
                t0 + {HOUR} as created, t0 + {HOUR} as u,
                case when scenario = 'repeated_key' and i % 2 = 1 then 2 else 1 end as copies
            from o where scenario not in ('missing_payment', 'unpaid_fulfillment')
            union all  -- the second charge: the rest of a split, a retry, a duplicate
            select o.*, 2,
                case when scenario = 'split_payment' then total - total // 2 else total end,
                cur, 'succeeded',
                t0 + case when scenario = 'duplicate_charge' then {HOUR} + 300 else 2 * {HOUR} end,
                t0 + case when scenario = 'duplicate_charge' then {HOUR} + 300 else 2 * {HOUR} end, 1
            from o where scenario in ('split_payment', 'retry_after_failure', 'duplicate_charge')
            union all  -- the pending charge captured the next day (a changed version)
            select o.*, 1, total, cur, 'succeeded', t0 + {HOUR}, t0 + 25 * {HOUR}, 1
            from o where scenario = 'pending_then_captured'
        )
        select
            (u - {start_ts}) // {DAY} as day, u as sort_ts, copies,
            'ch_' || i::varchar || '_' || n::varchar as id, 'charge' as object, amount::bigint as amount,
            lower(ccy) as currency, status,
            case when scenario = 'customer_mismatch' and i % 2 = 0 then 'CU-OTHER-' || i::varchar
                 when scenario = 'missing_enrichment' then 'CU-NEW-' || i::varchar else crm_customer end as customer,
            {{'order_id': case when scenario = 'orphan' and i % 3 = 0 then 'SO-ORPHAN-' || i::varchar
                               else order_id end}} as metadata,
            created::bigint as created, u::bigint as updated
        from c
        """
    )
    con.execute(
        f"""
        create or replace temp table v_refunds as
        with r as (
            select o.*, total * 3 // 10 as amount, t0 + 73 * {HOUR} as u
            from o where scenario in ('partial_refund_credited', 'status_conflict_refund')
            union all
            select o.*, total, t0 + 31 * {HOUR} from o where scenario = 'cancelled_refunded'
        )
        select
            (u - {start_ts}) // {DAY} as day, u as sort_ts, 1 as copies,
            're_' || i::varchar as id, 'refund' as object, amount::bigint as amount, lower(cur) as currency,
            'ch_' || i::varchar || '_1' as charge, 'succeeded' as status, {{'order_id': order_id}} as metadata,
            u::bigint as created
        from r
        """
    )
    con.execute(
        f"""
        create or replace temp table v_documents as
        with docs as (
            -- the invoice (draft first for draft_then_posted)
            select o.*, 'INV-' || i::varchar || '-1' as doc_no, 'INV' as doc_type,
                case when scenario = 'amount_mismatch_invoice' then total - 700 else total end as net,
                case when scenario = 'currency_mismatch' and i % 3 = 2 then fx_cur else cur end as ccy,
                case when scenario = 'draft_then_posted' then 'Draft' else 'Posted' end as status,
                t0 + 26 * {HOUR} as issued, t0 + 26 * {HOUR} as u,
                case when scenario = 'repeated_key' and i % 2 = 0 then 2 else 1 end as copies
            from o where scenario not in ('missing_payment', 'missing_invoice', 'unpaid_fulfillment')
            union all
            select o.*, 'INV-' || i::varchar || '-1', 'INV', total, cur, 'Posted', t0 + 26 * {HOUR}, t0 + 50 * {HOUR}, 1
            from o where scenario = 'draft_then_posted'
            union all
            select o.*, 'INV-' || i::varchar || '-2', 'INV', total, cur, 'Posted', t0 + 26 * {HOUR},
                t0 + 26 * {HOUR} + 600, 1
            from o where scenario = 'duplicate_invoice'
            union all  -- credit notes, written negative
            select o.*, 'CRN-' || i::varchar, 'CRN', -(total * 3 // 10), cur, 'Posted', t0 + 75 * {HOUR},
                t0 + 75 * {HOUR}, 1
            from o where scenario = 'partial_refund_credited'
            union all
            select o.*, 'CRN-' || i::varchar, 'CRN', -total, cur, 'Posted', t0 + 33 * {HOUR}, t0 + 33 * {HOUR}, 1
            from o where scenario = 'cancelled_refunded'
        )
        select
            (u - {start_ts}) // {DAY} as day, u as sort_ts, copies,
            doc_no as "DocNo", doc_type as "DocType",
            case when scenario = 'orphan' and i % 3 = 1 then 'SO-ORPHAN-' || i::varchar else order_id end as "SalesOrder",
            case when scenario = 'customer_mismatch' and i % 2 = 1 then 'CU-OTHER-' || i::varchar
                 when scenario = 'missing_enrichment' then 'CU-NEW-' || i::varchar else crm_customer end as "Customer",
            ccy as "Curr", money(net::bigint) as "NetAmount", status as "Status",
            strftime(berlin(issued), '%d.%m.%Y') as "DocDate",
            strftime(berlin(u), '%Y-%m-%d %H:%M:%S') as "ChangedOn"
        from docs
        """
    )
    con.execute(
        f"""
        create or replace temp table v_shipments as
        with s as (
            select o.*, 'SH-' || i::varchar || '-1' as ref,
                case when scenario = 'activation' then 'act' else 'ship' end as kind,
                case when scenario = 'activation' then 'active' else 'dispatched' end as status,
                t0 + case when scenario = 'activation' then 2 * {HOUR} else 51 * {HOUR} end as ev,
                t0 + case when scenario = 'activation' then 2 * {HOUR} else 51 * {HOUR} end as u
            from o
            where scenario not in ('missing_payment', 'missing_fulfillment', 'cancelled_refunded')
                and not (scenario = 'status_conflict_paid' and i % 2 = 0)
            union all  -- delivered: a changed version
            select o.*, 'SH-' || i::varchar || '-1', 'ship', 'delivered', t0 + 99 * {HOUR}, t0 + 99 * {HOUR}
            from o
            where scenario not in ('missing_payment', 'missing_fulfillment', 'cancelled_refunded', 'activation')
                and not (scenario = 'status_conflict_paid' and i % 2 = 0)
            union all
            select o.*, 'SH-' || i::varchar || '-2', 'ship', 'dispatched', t0 + 52 * {HOUR}, t0 + 52 * {HOUR}
            from o where scenario = 'duplicate_shipment'
        )
        select
            (u - {start_ts}) // {DAY} as day, u as sort_ts, 1 as copies,
            ref as shipment_ref,
            case when scenario = 'orphan' and i % 3 = 2 then 'SO-ORPHAN-' || i::varchar else order_id end as order_no,
            kind, status, n_lines::int as qty_lines,
            to_timestamp(ev) as event_time, to_timestamp(u) as modified_time
        from s
        """
    )
    con.execute(
        f"""
        create or replace temp table v_accounts as
        with a as (
            select i // 3 as c, crm_customer, t0 - {HOUR} as u, 1 as n from o where i % 3 = 0
            union all  -- a plan change two days later (a changed version)
            select i // 3, crm_customer, t0 + 47 * {HOUR}, 2 from o where i % 3 = 0 and (i // 3) % 40 = 0
        )
        select
            (u - {start_ts}) // {DAY} as day, u as sort_ts, 1 as copies,
            crm_customer as "AccountId",
            case when rnd(c, 11) % 200 = 0 then ''
                 else ['smb', 'mid-market', 'enterprise'][1 + (rnd(c, 12) % 3)::int] end as "Segment",
            case when n = 2 then 'enterprise' else ['free', 'pro', 'team'][1 + (rnd(c, 13) % 3)::int] end as "Plan",
            'owner-' || (c % 50)::varchar as "AccountOwner",
            iso_z(u) as "ModifiedDate"
        from a
        """
    )


def _write_day(con: duckdb.DuckDBPyConnection, out: Path, stream: str, table: str, day: int,
               date: dt.date, start_ts: int) -> int:
    fmt = STREAMS[stream]
    folder = out / stream
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{date.isoformat()}.{fmt}"
    cols = [r[0] for r in con.execute(f"describe {table}").fetchall()
            if r[0] not in ("day", "sort_ts", "copies")]
    select = ", ".join(f'"{c}"' for c in cols)
    # `copies` repeats a row inside the file (a key repeated in one delivery); rows in update order.
    query = (f"select {select} from {table}, range(copies) as rep(r) where day = {day} "
             f"order by sort_ts, {select.split(', ')[0]}")
    count = con.execute(f"select count(*) from {table}, range(copies) where day = {day}").fetchall()[0][0]
    if not count:
        return 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    options = {"jsonl": "format json", "csv": "format csv, header true", "parquet": "format parquet, compression snappy"}
    con.execute(f"copy ({query}) to '{tmp}' ({options[fmt]})")
    os.replace(tmp, path)
    mtime_ns = (start_ts + day * DAY + DAY - 1) * 1_000_000_000
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return int(count)


def generate(out: Path, orders: int, days: int, seed: int = 7, start: dt.date = dt.date(2026, 10, 1),
             write_days: list[int] | None = None, threads: int | None = None, echo=print) -> dict:
    """Write the export files of the given day indexes (default: the history, days 0..days-1).

    Args:
        out: the export root (RECON_DEMO_DATA): <out>/<system>/<stream>/YYYY-MM-DD.<ext>.
        orders: orders placed over the `days` history days (the daily rate is orders / days).
        days: the length of the history.
        seed: the pseudo-random seed.
        start: the first day.
        write_days: day indexes to write (day `days` is the next day after the history).
        threads: DuckDB threads (default: DuckDB's).
        echo: where progress goes.

    Returns:
        The export's description, also written to <out>/exports.json.
    """
    started = time.perf_counter()
    write_days = list(range(days)) if write_days is None else sorted(write_days)
    lo = max(0, min(write_days) - MAX_LAG_DAYS)
    first_order = math.floor(lo * orders / days)
    last_order = math.ceil((max(write_days) + 1) * orders / days)
    out.mkdir(parents=True, exist_ok=True)
    start_ts = int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp())
    con = duckdb.connect(str(out / ".gen.duckdb"))
    try:
        if threads:
            con.execute(f"set threads = {int(threads)}")
        con.execute("set preserve_insertion_order = false")
        build_tables(con, orders, days, seed, start, first_order, last_order)
        rows: dict[str, int] = {}
        tables = {"shop/orders": "v_orders", "psp/charges": "v_charges", "psp/refunds": "v_refunds",
                  "erp/documents": "v_documents", "wms/shipments": "v_shipments", "crm/accounts": "v_accounts"}
        for stream, table in tables.items():
            # sorted by day, so each day's COPY reads few row groups
            con.execute(f"create or replace temp table {table} as select * from {table} order by day, sort_ts")
            for day in write_days:
                n = _write_day(con, out, stream, table, day, start + dt.timedelta(days=day), start_ts)
                rows[stream] = rows.get(stream, 0) + n
        scenarios = dict(con.execute(
            f"select scenario, count(*) from o where d in ({', '.join(str(d) for d in write_days)}) group by all"
        ).fetchall())
    finally:
        con.close()
        for suffix in ("", ".wal"):
            Path(str(out / ".gen.duckdb") + suffix).unlink(missing_ok=True)
    meta_path = out / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    written = sorted(set(meta.get("days_written", [])) | set(write_days))
    meta = {"orders": orders, "days": days, "seed": seed, "start": start.isoformat(), "days_written": written,
            "last_day": (start + dt.timedelta(days=max(written))).isoformat()}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    seconds = time.perf_counter() - started
    echo(f"  wrote days {write_days[0]}..{write_days[-1]} ({len(write_days)}) into {out} in {seconds:.1f}s: "
         + ", ".join(f"{s} {n:,}" for s, n in rows.items()))
    return {"seconds": round(seconds, 2), "rows": rows, "scenarios": scenarios, **meta}


def next_day(out: Path, threads: int | None = None, echo=print) -> dict:
    """Write one more day (new orders, and new versions of older ones) after the last day written."""
    meta = json.loads((out / META_FILE).read_text())
    day = max(meta["days_written"]) + 1
    return generate(out, meta["orders"], meta["days"], meta["seed"], dt.date.fromisoformat(meta["start"]),
                    write_days=[day], threads=threads, echo=echo)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 10, 1))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--next-day", action="store_true", help="write one more day after the last day written")
    args = p.parse_args(argv)
    if args.next_day:
        result = next_day(args.out, args.threads)
    else:
        result = generate(args.out, args.orders, args.days, args.seed, args.start, threads=args.threads)
    print(json.dumps({k: v for k, v in result.items() if k != "days_written"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
