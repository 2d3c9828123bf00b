"""The floor: a hand-written DuckDB script that reconciles the demo systems' export files as of day D.

Usage:
    .venv/bin/python bench/handwritten_nightly.py --data /tmp/exports --date 2026-10-30 [--out diffs.parquet]

What a competent engineer would write by hand for the five systems of dagster_project/config/demo.yaml
(their column mapping is hard-coded below; the rule parameters, i.e. tolerances, FX rates, grace windows
and freshness, are read from that file's `rules` and `systems`): one DuckDB connection, the files read
directly (read_json / read_csv / read_parquet, file modification times from read_blob), the current
version of every record as of D, one aggregation per order across the roles, and the diff catalogue of
docs/reconciliation-rules.md as a UNION ALL. No dbt, no Dagster, no landing. Output: one row per
(order_id, diff_type, system) with amount_at_risk, for the order-level diff types (contract_violation and
stale_source are system-level and not computed here).

It assumes what the demo config declares: every stream is `sync_mode: append` (the default), and a file
is one delivery. It does not run contracts: the benchmark's exports break none (bench_nightly.py checks
that the platform quarantined nothing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "dagster_project" / "config" / "demo.yaml"

ROLE_OF = {"shop": "orders", "psp": "payments", "erp": "invoices", "wms": "fulfillments", "crm": "customers"}


def load_rules(config_path: Path = DEMO_CONFIG) -> dict[str, Any]:
    """The rule parameters and the freshness hours per system, from the config file (no validation)."""
    cfg = yaml.safe_load(config_path.read_text())
    rules = cfg["rules"]
    return {
        "tol": rules.get("amount_tolerance") or {},
        "fx_tolerance": rules.get("fx_tolerance") or 0,
        "fx_rates": rules.get("fx_rates") or [],
        "grace": rules.get("grace_hours") or {},
        "freshness": {name: s.get("freshness_hours") for name, s in cfg["systems"].items()},
    }


def _ts(t: dt.datetime) -> str:
    return f"timestamp '{t:%Y-%m-%d %H:%M:%S}'"


def _dec(v: Any, scale: int = 6) -> str:
    return f"cast('{v or 0}' as decimal(20,{scale}))"


def reconcile(con: duckdb.DuckDBPyConnection, data: Path, day: dt.date, rules: dict[str, Any]) -> None:
    """Create temp table `diffs` (order_id, diff_type, system, amount_at_risk) as of `day`."""
    cutoff = dt.datetime(day.year, day.month, day.day) + dt.timedelta(days=1)

    def bound(diff_type: str) -> str:  # a graced rule fires once its anchor < cutoff - grace
        return _ts(cutoff - dt.timedelta(hours=float(rules["grace"].get(diff_type) or 0)))

    t = rules["tol"]
    tol = (f"greatest({_dec(t.get('absolute'), 4)}, {_dec(t.get('relative'))} * abs(coalesce(total_amount, 0)), "
           f"{_dec(t.get('per_line'), 4)} * coalesce(line_count, 0))")
    fx_tol = f"greatest({tol}, {_dec(rules['fx_tolerance'])} * abs(coalesce(total_amount, 0)))"
    rate_cases = " ".join(
        f"when r.currency = '{r['from'].upper()}' and o.currency = '{r['to'].upper()}' "
        f"then cast(round(r.amount * cast({r['rate']} as decimal(20,8)), 4) as decimal(20,4))"
        for r in rules["fx_rates"])
    known_pairs = " or ".join(f"(r.currency = '{r['from'].upper()}' and o.currency = '{r['to'].upper()}')"
                              for r in rules["fx_rates"]) or "false"
    cut = _ts(cutoff)

    def src(glob: str) -> str:
        return str(data / glob).replace("'", "''")

    # File modification time = when a file's rows became known (available_at).
    con.execute(f"""
        create or replace temp table files as
        select filename, row_number() over (order by filename) as file_id,
            timezone('UTC', last_modified) as available_at
        from read_blob(['{src("shop/orders/*.jsonl")}', '{src("psp/charges/*.jsonl")}', '{src("psp/refunds/*.jsonl")}',
                        '{src("erp/documents/*.csv")}', '{src("wms/shipments/*.parquet")}', '{src("crm/accounts/*.csv")}'])
    """)

    # Every version of every record, mapped to the canonical columns (the demo config's `fields`).
    con.execute(f"""
        create or replace temp table versions as
        with
        shop as (
            select 'shop' as system, 'orders' as stream, filename, order_number as record_id,
                order_number as order_id, nullif(trim(customer.id), '') as customer_id,
                case lower(trim(state)) when 'open' then 'placed' when 'canceled' then 'cancelled'
                    else lower(trim(state)) end as status,
                upper(nullif(trim(currency), '')) as currency,
                cast(try_cast(nullif(trim(total), '') as decimal(38,6)) as decimal(20,4)) as amount,
                json_array_length(lines) as line_count,
                timezone('UTC', try_cast(created_at as timestamptz)) as event_at,
                timezone('UTC', try_cast(updated_at as timestamptz)) as updated_at,
                null::varchar as kind, null::varchar as segment, null::varchar as plan
            from read_json('{src("shop/orders/*.jsonl")}', format = 'newline_delimited', filename = true,
                columns = {{order_number: 'VARCHAR', customer: 'STRUCT(id VARCHAR)', state: 'VARCHAR',
                           currency: 'VARCHAR', total: 'VARCHAR', lines: 'JSON', created_at: 'VARCHAR',
                           updated_at: 'VARCHAR'}})
        ),
        charges as (
            select 'psp', 'charges', filename, id, nullif(trim(metadata.order_id), ''), nullif(trim(customer), ''),
                case lower(trim(status)) when 'paid' then 'succeeded' else lower(trim(status)) end,
                upper(nullif(trim(currency), '')), cast(amount * 0.01 as decimal(20,4)), null::bigint,
                timezone('UTC', to_timestamp(created)), timezone('UTC', to_timestamp(updated)), 'charge', null, null
            from read_json('{src("psp/charges/*.jsonl")}', format = 'newline_delimited', filename = true,
                columns = {{id: 'VARCHAR', amount: 'BIGINT', currency: 'VARCHAR', status: 'VARCHAR',
                           customer: 'VARCHAR', metadata: 'STRUCT(order_id VARCHAR)', created: 'BIGINT',
                           updated: 'BIGINT'}})
        ),
        refunds as (
            select 'psp', 'refunds', filename, id, nullif(trim(metadata.order_id), ''), null,
                lower(trim(status)), upper(nullif(trim(currency), '')), cast(amount * 0.01 as decimal(20,4)), null,
                timezone('UTC', to_timestamp(created)), timezone('UTC', to_timestamp(created)), 'refund', null, null
            from read_json('{src("psp/refunds/*.jsonl")}', format = 'newline_delimited', filename = true,
                columns = {{id: 'VARCHAR', amount: 'BIGINT', currency: 'VARCHAR', status: 'VARCHAR',
                           metadata: 'STRUCT(order_id VARCHAR)', created: 'BIGINT'}})
        ),
        erp as (
            select 'erp', 'documents', filename, "DocNo", nullif(trim("SalesOrder"), ''), nullif(trim("Customer"), ''),
                case lower(trim("Status")) when 'cancelled' then 'void' else lower(trim("Status")) end,
                upper(nullif(trim("Curr"), '')), cast(abs(try_cast(nullif(trim("NetAmount"), '') as decimal(38,6))) as decimal(20,4)),
                null, try_strptime("DocDate", '%d.%m.%Y'),
                timezone('UTC', timezone('Europe/Berlin', try_strptime("ChangedOn", '%Y-%m-%d %H:%M:%S'))),
                case lower(trim("DocType")) when 'inv' then 'invoice' when 'crn' then 'credit_note'
                    else lower(trim("DocType")) end, null, null
            from read_csv('{src("erp/documents/*.csv")}', header = true, all_varchar = true, filename = true)
        ),
        wms as (
            select 'wms', 'shipments', filename, shipment_ref, nullif(trim(order_no), ''), null,
                case lower(trim(status)) when 'picked' then 'pending' when 'dispatched' then 'shipped'
                    when 'active' then 'activated' else lower(trim(status)) end,
                null, null, qty_lines, timezone('UTC', event_time), timezone('UTC', modified_time),
                case lower(trim(kind)) when 'ship' then 'shipment' when 'act' then 'activation' else lower(trim(kind)) end,
                null, null
            from read_parquet('{src("wms/shipments/*.parquet")}', filename = true)
        ),
        crm as (
            select 'crm', 'accounts', filename, "AccountId", null, "AccountId", null, null, null, null, null,
                timezone('UTC', try_cast("ModifiedDate" as timestamptz)), null,
                nullif(trim("Segment"), ''), nullif(trim("Plan"), '')
            from read_csv('{src("crm/accounts/*.csv")}', header = true, all_varchar = true, filename = true)
        )
        select v.* exclude (filename), files.file_id, files.available_at
        from (select * from shop union all select * from charges union all select * from refunds
              union all select * from erp union all select * from wms union all select * from crm) as v
        join files using (filename)
    """)

    # The current version of each record as of D, and how often it is repeated in its own file.
    con.execute(f"""
        create or replace temp table cur as
        select *,
            case system when 'shop' then 'orders' when 'psp' then 'payments' when 'erp' then 'invoices'
                when 'wms' then 'fulfillments' else 'customers' end as role,
            count(*) over (partition by system, stream, record_id, file_id, updated_at) as repeats
        from versions
        where available_at < {cut} and updated_at < {cut} and record_id is not null
        qualify row_number() over (partition by system, stream, record_id
                                   order by updated_at desc, available_at desc) = 1
    """)

    # Freshness: the latest file with rows, or current row, known before the cutoff; older than the
    # system's freshness_hours -> the system (and its role) is stale and the diffs involving it are held.
    stale_parts = []
    for system, hours in rules["freshness"].items():
        if hours is not None:
            stale_parts.append(f"select '{system}' as system, '{ROLE_OF[system]}' as role, "
                               f"{_ts(cutoff - dt.timedelta(hours=float(hours)))} as stale_before")
    con.execute(f"""
        create or replace temp table stale_roles as
        with seen as (
            select system, max(seen_at) as last_seen_at from (
                select system, available_at as seen_at from versions where available_at < {cut}
                union all
                select system, updated_at from cur
            ) group by system
        )
        select distinct s.role
        from ({' union all '.join(stale_parts) or "select null as system, null as role, null as stale_before where false"}) as s
        left join seen using (system)
        where seen.last_seen_at is null or seen.last_seen_at < s.stale_before
    """)

    con.execute(f"""
        create or replace temp table diffs as
        with
        o as materialized (
            select cur.order_id, customer_id, status, currency, amount as total_amount, line_count,
                event_at as ordered_at, c.cancelled_at
            from cur
            left join (select order_id, min(updated_at) as cancelled_at from versions
                       where system = 'shop' and status = 'cancelled' and available_at < {cut} and updated_at < {cut}
                       group by order_id) as c using (order_id)
            where role = 'orders'
        ),
        -- payments, invoices and fulfillments of each order, amounts in the order currency
        r as (
            select r.*, o.customer_id as order_customer_id,
                r.currency is not null and o.currency is not null and r.currency <> o.currency as is_foreign,
                r.currency is not null and o.currency is not null and r.currency <> o.currency
                    and not ({known_pairs}) as is_rate_missing,
                case when r.currency is null or o.currency is null or r.currency = o.currency then r.amount
                     {rate_cases} end as conv,
                (r.kind = 'charge' and r.status = 'succeeded') or (r.kind = 'invoice' and r.status = 'posted') as is_primary
            from cur as r left join o using (order_id)
            where r.role in ('payments', 'invoices', 'fulfillments') and r.order_id is not null
        ),
        dups as (
            select distinct order_id, role from r where is_primary group by order_id, role, currency, amount
            having count(*) >= 2
        ),
        agg as (
            select order_id,
                count(*) filter (r.kind = 'charge' and r.status = 'succeeded') as charges,
                coalesce(sum(conv) filter (r.kind = 'charge' and r.status = 'succeeded'), 0) as captured,
                coalesce(sum(conv) filter (r.kind = 'refund' and r.status = 'succeeded'), 0) as refunded,
                min(event_at) filter (r.kind = 'charge' and r.status = 'succeeded') as first_captured_at,
                max(event_at) filter (r.kind = 'refund' and r.status = 'succeeded') as last_refunded_at,
                coalesce(bool_or(is_foreign) filter (r.kind = 'charge' and r.status = 'succeeded'), false) as charge_foreign,
                coalesce(bool_or(is_rate_missing) filter (r.kind = 'charge' and r.status = 'succeeded'), false)
                    as charge_rate_missing,
                coalesce(bool_or(r.customer_id <> order_customer_id) filter (r.kind = 'charge' and r.status = 'succeeded'), false)
                    as charge_customer_conflict,
                count(*) filter (r.kind = 'invoice' and r.status = 'posted') as invoices,
                coalesce(sum(conv) filter (r.kind = 'invoice' and r.status = 'posted'), 0) as invoiced,
                coalesce(sum(conv) filter (r.kind = 'credit_note' and r.status = 'posted'), 0) as credited,
                coalesce(bool_or(is_foreign) filter (r.kind = 'invoice' and r.status = 'posted'), false) as invoice_foreign,
                coalesce(bool_or(is_rate_missing) filter (r.kind = 'invoice' and r.status = 'posted'), false)
                    as invoice_rate_missing,
                coalesce(bool_or(r.customer_id <> order_customer_id) filter (r.role = 'invoices' and r.status = 'posted'), false)
                    as invoice_customer_conflict,
                count(*) filter (r.role = 'fulfillments' and r.status in ('shipped', 'delivered', 'activated')) as fulfillments,
                coalesce(sum(line_count) filter (r.role = 'fulfillments' and r.status in ('shipped', 'delivered', 'activated')), 0)
                    as fulfilled_lines,
                min(event_at) filter (r.role = 'fulfillments' and r.status in ('shipped', 'delivered', 'activated'))
                    as first_fulfilled_at
            from r group by order_id
        ),
        x as (
            select coalesce(agg.order_id, o.order_id) as order_id, o.*  exclude (order_id), agg.* exclude (order_id),
                o.order_id is not null and coalesce(o.status, '') <> 'cancelled' as is_live,
                coalesce(o.status = 'cancelled', false) as is_cancelled,
                coalesce(agg.charges, 0) > 0 as is_paid, coalesce(agg.invoices, 0) > 0 as is_invoiced,
                coalesce(agg.fulfillments, 0) > 0 as is_fulfilled,
                coalesce(captured, 0) - coalesce(refunded, 0) as net_paid,
                cust.record_id is not null and cust.segment is not null and cust.plan is not null as is_enriched,
                pd.order_id is not null as has_dup_charges, id.order_id is not null as has_dup_invoices
            from agg full join o using (order_id)
            left join cur as cust on cust.role = 'customers' and cust.record_id = o.customer_id
            left join dups as pd on pd.order_id = coalesce(agg.order_id, o.order_id) and pd.role = 'payments'
            left join dups as id on id.order_id = coalesce(agg.order_id, o.order_id) and id.role = 'invoices'
        ),
        c as materialized (
            select *, {tol} as tol,
                coalesce(has_dup_charges and captured > total_amount + {tol}, false) as charge_dup,
                coalesce(charge_foreign and (charge_rate_missing or abs(captured - total_amount) > {fx_tol}), false) as charge_ccy,
                coalesce(has_dup_invoices and invoiced > total_amount + {tol}, false) as invoice_dup,
                coalesce(invoice_foreign and (invoice_rate_missing or abs(invoiced - total_amount) > {fx_tol}), false) as invoice_ccy,
                {fx_tol} as fx_tol
            from x
        ),
        orphans as (
            select order_id, system, role, coalesce(sum(amount) filter (role <> 'fulfillments'), 0) as amount,
                min(updated_at) as first_updated_at
            from cur where role in ('payments', 'invoices', 'fulfillments') and order_id is not null
                and order_id not in (select order_id from o)
            group by all
        ),
        candidates as (
            select order_id, 'missing_payment' as diff_type, 'psp' as system, total_amount as amount_at_risk,
                'orders,payments' as roles, 1 as prio
            from c where is_live and not is_paid and not is_fulfilled and ordered_at < {bound('missing_payment')}
            union all
            select order_id, 'missing_invoice', 'erp', net_paid, 'payments,invoices', 1
            from c where is_live and is_paid and net_paid > tol and not is_invoiced
                and first_captured_at < {bound('missing_invoice')}
            union all
            select order_id, 'missing_fulfillment', 'wms', net_paid, 'payments,fulfillments', 1
            from c where is_live and is_paid and net_paid > tol and not is_fulfilled
                and first_captured_at < {bound('missing_fulfillment')}
            union all
            select order_id, 'unpaid_fulfillment', 'wms', total_amount, 'orders,payments,fulfillments', 1
            from c where is_live and is_fulfilled and not is_paid and first_fulfilled_at < {bound('unpaid_fulfillment')}
            union all
            select order_id, 'amount_mismatch', 'psp', abs(captured - total_amount), 'orders,payments', 1
            from c where is_live and is_paid and not charge_dup and not charge_ccy
                and abs(captured - total_amount) > case when charge_foreign then fx_tol else tol end
                and ordered_at < {bound('amount_mismatch')}
            union all
            select order_id, 'amount_mismatch', 'erp', abs(invoiced - total_amount), 'orders,invoices', 1
            from c where is_live and is_invoiced and not invoice_dup and not invoice_ccy
                and abs(invoiced - total_amount) > case when invoice_foreign then fx_tol else tol end
                and ordered_at < {bound('amount_mismatch')}
            union all
            select order_id, 'currency_mismatch', 'psp',
                case when charge_rate_missing then total_amount else abs(captured - total_amount) end, 'orders,payments', 1
            from c where is_live and charge_ccy and ordered_at < {bound('currency_mismatch')}
            union all
            select order_id, 'currency_mismatch', 'erp',
                case when invoice_rate_missing then total_amount else abs(invoiced - total_amount) end, 'orders,invoices', 1
            from c where is_live and invoice_ccy and ordered_at < {bound('currency_mismatch')}
            union all
            select order_id, 'duplicate_record', 'psp', captured - total_amount, 'orders,payments', 1 from c where charge_dup
            union all
            select order_id, 'duplicate_record', 'erp', invoiced - total_amount, 'orders,invoices', 1 from c where invoice_dup
            union all
            select order_id, 'duplicate_record', 'wms', 0, 'orders,fulfillments', 1
            from c where fulfillments >= 2 and fulfilled_lines > line_count
            union all
            select order_id, 'customer_mismatch', 'psp', 0, 'orders,payments', 1 from c where charge_customer_conflict
            union all
            select order_id, 'customer_mismatch', 'erp', 0, 'orders,invoices', 1 from c where invoice_customer_conflict
            union all
            select order_id, 'status_conflict', 'psp', net_paid, 'orders,payments', 1
            from c where is_cancelled and net_paid > tol and cancelled_at < {bound('status_conflict')}
            union all
            select order_id, 'status_conflict', 'wms', total_amount, 'orders,fulfillments', 1
            from c where is_cancelled and is_fulfilled and cancelled_at < {bound('status_conflict')}
            union all
            select order_id, 'status_conflict', 'erp', refunded - credited, 'payments,invoices', 1
            from c where refunded > credited + tol and last_refunded_at < {bound('status_conflict')}
            union all
            select order_id, 'missing_enrichment', 'crm', 0, 'orders,customers', 1
            from c where is_live and customer_id is not null and not is_enriched and ordered_at < {bound('missing_enrichment')}
            union all
            select order_id, 'orphan_record', system, amount, 'orders,' || role, 1
            from orphans where first_updated_at < {bound('orphan_record')}
            union all  -- a key repeated inside the file its current version came in (prio 0: wins a tie)
            select distinct order_id, 'duplicate_record', system, 0, role, 0
            from cur where repeats > 1 and order_id is not null and role <> 'customers'
        ),
        one_per_grain as (
            select * from candidates
            qualify row_number() over (partition by order_id, diff_type, system order by amount_at_risk desc, prio) = 1
        )
        select order_id, diff_type, system, cast(amount_at_risk as decimal(20,4)) as amount_at_risk
        from one_per_grain
        where not exists (select 1 from stale_roles where list_contains(string_split(roles, ','), stale_roles.role))
    """)


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="the export root (RECON_DEMO_DATA)")
    p.add_argument("--date", type=dt.date.fromisoformat, required=True, help="the as-of day D")
    p.add_argument("--config", type=Path, default=DEMO_CONFIG, help="where the rule parameters come from")
    p.add_argument("--out", type=Path, help="write the diffs here (Parquet)")
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    started = time.perf_counter()
    con = duckdb.connect()
    if args.threads:
        con.execute(f"set threads = {int(args.threads)}")
    reconcile(con, args.data.resolve(), args.date, load_rules(args.config))
    if args.out:
        con.execute(f"copy (select * from diffs order by all) to '{str(args.out).replace(chr(39), chr(39) * 2)}' (format parquet)")
    counts = dict(con.execute("select diff_type, count(*) from diffs group by 1 order by 1").fetchall())
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 3), "peak_rss_mib": round(peak_rss_mib(), 1),
                      "diffs": sum(counts.values()), "by_type": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
