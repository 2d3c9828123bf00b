"""Benchmark `recon order ORDER_ID` on a synthetic database of N orders (default 1,000,000).

Builds, entirely in DuckDB SQL, what a long-running deployment holds: raw landed tables with Airbyte
columns and staging *views* over them (as dbt builds them), ``marts.fct_orders``, 14 days of
``marts.fct_order_diffs`` history, exceptions with their events, and the canonical state history.
Then times the CLI command (in process, config load included) for random orders.

    .venv/bin/python bench/bench_order_timeline.py [--orders 1000000] [--repeat 20] [--keep DIR]

The result is written down in docs/exceptions.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.exceptions.store import ensure_schema
from dagster_project.lib.database import connect


def build(db: Path, orders: int) -> None:
    con = connect(db)
    con.execute("create schema raw_shop; create schema raw_psp; create schema raw_erp; create schema raw_wms; "
                "create schema raw_crm; create schema staging; create schema marts")
    ab = ("'r' || i as _airbyte_raw_id, timestamp '2026-10-01' + to_days(cast(i % 14 as integer)) "
          "+ interval 1 day as _airbyte_extracted_at")
    con.execute(f"""create table raw_shop.orders as select 'SO-' || lpad(cast(i as varchar), 8, '0') as order_number,
        'C-' || (i % 200000) as customer_id, case when i % 50 = 0 then 'cancelled' else 'placed' end as state,
        'EUR' as currency, cast(10 + i % 990 as decimal(20,4)) as total, 1 + i % 4 as lines,
        timestamp '2026-10-01' + to_minutes(cast(i * 20160 // {orders} as bigint)) as created_at,
        timestamp '2026-10-01' + to_minutes(cast(i * 20160 // {orders} as bigint)) as updated_at, {ab}
        from range({orders}) t(i)""")
    con.execute(f"""create table raw_psp.charges as select 'ch_' || i || '_' || k as id,
        'SO-' || lpad(cast(i as varchar), 8, '0') as order_ref, 'C-' || (i % 200000) as customer,
        case when k = 0 then 'pending' else 'succeeded' end as status, 'eur' as currency,
        cast((10 + i % 990) * 100 as bigint) as amount,
        epoch(timestamp '2026-10-01' + to_minutes(cast(i * 20160 // {orders} + 5 + k as bigint))) as updated, {ab}
        from range({orders}) t(i), range(2) k(k) where i % 20 != 0""")
    con.execute(f"""create table raw_erp.documents as select 'INV-' || i as doc_no,
        'SO-' || lpad(cast(i as varchar), 8, '0') as sales_order, 'posted' as status, 'EUR' as curr,
        cast(10 + i % 990 as varchar) as net_amount,
        strftime(timestamp '2026-10-01' + to_minutes(cast(i * 20160 // {orders} + 600 as bigint)), '%Y-%m-%d %H:%M:%S')
            as changed_on, {ab}
        from range({orders}) t(i) where i % 25 != 0""")
    con.execute(f"""create table raw_wms.shipments as select 'SH-' || i as shipment_ref,
        'SO-' || lpad(cast(i as varchar), 8, '0') as order_no, 'dispatched' as status, 1 + i % 4 as qty_lines,
        timestamp '2026-10-01' + to_minutes(cast(i * 20160 // {orders} + 1440 as bigint)) as modified_time, {ab}
        from range({orders}) t(i) where i % 30 != 0""")
    con.execute(f"""create table raw_crm.accounts as select 'C-' || i as account_id, 'smb' as segment,
        'basic' as plan, timestamp '2026-09-01' as modified, {ab} from range(200000) t(i)""")
    # staging views: renaming and casting only, as the dbt staging layer does
    con.execute("""create view staging.stg_shop__orders as select order_number as order_id, customer_id,
        state as status, currency, total as total_amount, lines as line_count, created_at as ordered_at,
        updated_at, null::timestamp as available_at, 'shop' as source_system, 'orders' as source_stream,
        _airbyte_raw_id, _airbyte_extracted_at from raw_shop.orders""")
    con.execute("""create view staging.stg_psp__charges as select id as payment_id, order_ref as order_id,
        customer as customer_id, 'charge' as kind, status, upper(currency) as currency,
        cast(amount as decimal(20,4)) / 100 as amount, to_timestamp(updated)::timestamp as updated_at,
        null::timestamp as available_at, _airbyte_raw_id, _airbyte_extracted_at from raw_psp.charges""")
    con.execute("""create view staging.stg_erp__documents as select doc_no as invoice_id, sales_order as order_id,
        'invoice' as kind, status, curr as currency, cast(net_amount as decimal(20,4)) as amount,
        strptime(changed_on, '%Y-%m-%d %H:%M:%S') as updated_at, null::timestamp as available_at,
        _airbyte_raw_id, _airbyte_extracted_at from raw_erp.documents""")
    con.execute("""create view staging.stg_wms__shipments as select shipment_ref as fulfillment_id, order_no as order_id,
        'shipment' as kind, 'shipped' as status, qty_lines as line_count, modified_time as updated_at,
        null::timestamp as available_at, _airbyte_raw_id, _airbyte_extracted_at from raw_wms.shipments""")
    con.execute("""create view staging.stg_crm__accounts as select account_id as customer_id, segment, plan,
        modified as updated_at, null::timestamp as available_at, _airbyte_raw_id, _airbyte_extracted_at
        from raw_crm.accounts""")
    con.execute("""create table marts.fct_orders as select date '2026-10-14' as as_of_date, order_number as order_id,
        customer_id, 'RECONCILED' as state, null::varchar as hold_reason, 'revenue-ops' as state_owner,
        'smb' as customer_segment, currency, total as total_amount, total as net_paid_amount,
        total as net_invoiced_amount, lines::bigint as fulfilled_lines from raw_shop.orders""")
    con.execute(f"""create table marts.fct_order_diffs as select date '2026-10-01' + cast(d as integer) as as_of_date,
        'SO-' || lpad(cast(i as varchar), 8, '0') as order_id, 'missing_invoice' as diff_type, 'erp' as system,
        'high' as severity, 'posted invoice' as expected_value, 'none' as actual_value,
        cast(10 + i % 990 as decimal(20,4)) as amount_at_risk, 'EUR' as currency, 'missing_invoice' as rule
        from range(0, {orders}, 25) t(i), range(14) s(d)""")
    ensure_schema(con)
    con.execute("""insert into recon.exceptions (exception_id, order_id, customer_id, diff_type, system, status,
        severity, owner, amount_at_risk, currency, expected_value, actual_value, first_seen_date, last_seen_date,
        last_as_of_date, opened_as_of_date, due_at, lineage)
        select substr(md5(order_id), 1, 20), order_id, null, 'missing_invoice', 'erp', 'open', 'high', 'revenue-ops',
        max(amount_at_risk), 'EUR', 'posted invoice', 'none', min(as_of_date), max(as_of_date), max(as_of_date),
        min(as_of_date), timestamp '2026-10-03', '{}' from marts.fct_order_diffs group by order_id""")
    con.execute("""insert into recon.exception_events (event_id, exception_id, as_of_date, event_type, actor,
        from_status, to_status, reason, details, recorded_at)
        select substr(md5(exception_id || k), 1, 24), exception_id, date '2026-10-01' + cast(k as integer),
        case k when 0 then 'opened' when 1 then 'acknowledged' else 'escalated' end, 'recon', 'open', 'open', 'r',
        '{}', timestamp '2026-10-02' + to_days(cast(k as integer)) from recon.exceptions, range(3) t(k)""")
    con.execute("""create or replace table marts.fct_order_state_history as select date '2026-10-01'
        + cast(d as integer) as as_of_date, order_number as order_id,
        case d when 0 then 'PAID' else 'RECONCILED' end as state, 'revenue-ops' as state_owner,
        null::varchar as hold_reason, 'smb' as customer_segment from raw_shop.orders, range(2) t(d)""")
    con.execute("checkpoint")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", help="Build the database in this folder and keep it.")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recon-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "bench.yaml"
    config_path.write_text(DEMO_CONFIG_PATH.read_text().replace(
        "${RECON_HOME:-.recon}/recon.duckdb", str(folder / "bench.duckdb")))
    cfg = load_config(config_path)
    if not cfg.duckdb_path.exists():
        started = time.perf_counter()
        build(cfg.duckdb_path, args.orders)
        print(f"built {args.orders:,} orders in {time.perf_counter() - started:.1f}s "
              f"({cfg.duckdb_path.stat().st_size / 1e6:.0f} MB)")

    import click

    from dagster_project.cli.exceptions import order

    @click.group()
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = {"config_path": str(config_path)}

    root.add_command(order)
    runner = CliRunner()
    rng = random.Random(7)
    timings: dict[str, list[float]] = {"text": [], "json": []}
    for i in range(args.repeat):
        n = rng.randrange(0, args.orders, 25) if i % 2 == 0 else rng.randrange(args.orders)
        order_id = f"SO-{n:08d}"
        for mode in ("text", "json"):
            started = time.perf_counter()
            result = runner.invoke(root, ["order", order_id, *(["--json"] if mode == "json" else [])])
            timings[mode].append(time.perf_counter() - started)
            assert result.exit_code == 0, result.output
    print(result.output[:300] if args.repeat else "")
    for mode, values in timings.items():
        values.sort()
        print(f"recon order ({mode}): median {statistics.median(values) * 1000:.0f} ms, "
              f"p95 {values[int(len(values) * 0.95) - 1] * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms "
              f"over {len(values)} orders")


if __name__ == "__main__":
    main()
