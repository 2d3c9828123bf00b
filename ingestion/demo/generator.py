"""Deterministic demo data: five systems' native exports of the same orders, with known problems.

`generate` writes one file per stream per day under `out_dir` (see the README of the demo config),
plus `ground_truth.csv` (every diff that must show, and from/until which as-of day), `stale.csv`
(system outage days), `contract_breaks.csv` (the extra records that break the source contracts, see
contract_breaks.py) and `manifest.json`. The same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ingestion.demo.contract_breaks import remove_contract_breaks_csv, write_contract_breaks
from ingestion.demo.ground_truth import (
    MANIFEST_FILE,
    TruthRow,
    write_ground_truth,
    write_stale,
)
from ingestion.demo.records import STREAMS, SYSTEM_ROLES, Sink, money
from ingestion.demo.rules import DIFF_TYPES, RuleSet
from ingestion.demo.scenarios import INJECTIONS, LOOKALIKES, PLANS, SEGMENTS, Scenarios
from ingestion.demo.steps import DAY, Order, Steps
from ingestion.demo.timefmt import STORE_TZ, Clock, day_start_ts
from ingestion.demo.writers import clear_previous, write_files

DEFAULT_INJECTION_RATE = 0.006
DEFAULT_LOOKALIKE_RATE = 0.006
LATE_ARRIVAL_RATE = 0.02
MAX_ORDERS = 9_999_999  # order numbers are SO- plus 7 digits; orphans use SO-9 plus 7 digits
MAX_DAYS = 3660

# Share of clean orders with each realistic feature (on top of the explicit look-alikes).
_NATURAL = {
    "activation": 0.15,
    "multi_shipment": 0.10,
    "partial_refund_credited": 0.04,
    "cancelled_before_payment": 0.03,
    "cancelled_after_payment_refunded": 0.015,
    "returned_refunded": 0.01,
    "shipment_cancelled_reshipped": 0.01,
    "order_exported_after_payment": 0.01,
}
_NATURAL_PAYMENT = (
    ("split_payment", 0.03),
    ("split_payment_equal", 0.01),
    ("failed_then_succeeded", 0.03),
    ("pending_then_succeeded", 0.10),
    ("payment_in_grace", 0.03),
    ("fx_payment", 0.03),
    ("rounding_payment", 0.01),
)
_NATURAL_INVOICE = (("split_invoice", 0.02), ("void_replaced_invoice", 0.01), ("rounding_invoice", 0.01))
_CURRENCIES = (("EUR", 0.60), ("USD", 0.25), ("GBP", 0.15))
# Local shopping hours: few orders at night, most in the day and the evening.
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 8, 9, 8, 8, 8, 8, 8, 9, 10, 10, 8, 5, 2)


@dataclass
class GenerationSummary:
    """What `generate` wrote."""

    out_dir: Path
    start_date: date
    end_date: date
    orders: int
    customers: int
    rows: dict[str, int]  # "shop/orders" -> rows written
    files_written: int
    injected: dict[str, int]  # diff type -> ground-truth rows from injected problems
    injected_by_system: dict[str, int]  # "diff_type/system" -> rows
    lookalikes: dict[str, int]  # look-alike kind -> orders
    stale: list[tuple[str, date]]
    incidental: int = 0  # ground-truth rows the data causes without an injected problem
    contract_breaks: int = 0  # extra records that break a source contract (contract_breaks.csv)
    files: dict[str, int] = field(default_factory=dict, repr=False)


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _validate(
    orders: Any, days: Any, seed: Any, start_date: Any, injection_rates: Any, lookalike_rate: Any
) -> tuple[dict[str, float], float]:
    if isinstance(orders, bool) or not isinstance(orders, int) or not 1 <= orders <= MAX_ORDERS:
        raise ValueError(f"orders must be an integer in [1, {MAX_ORDERS}], got {orders!r}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer in [1, {MAX_DAYS}], got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(start_date, date) or hasattr(start_date, "hour"):
        raise ValueError(f"start_date must be a datetime.date, got {start_date!r}")
    rates = dict.fromkeys(INJECTIONS, DEFAULT_INJECTION_RATE)
    if injection_rates is not None:
        if not isinstance(injection_rates, dict):
            raise ValueError("injection_rates must be a dict of diff type -> rate")
        for key, value in injection_rates.items():
            if key not in INJECTIONS:
                known = ", ".join(sorted(INJECTIONS))
                raise ValueError(f"injection_rates: unknown diff type {key!r} (known: {known})")
            rates[key] = _check_rate(f"injection_rates[{key!r}]", value)
    la_rate = (
        DEFAULT_LOOKALIKE_RATE if lookalike_rate is None else _check_rate("lookalike_rate", lookalike_rate)
    )
    if sum(r for k, r in rates.items() if k != "orphan_record") + la_rate * len(LOOKALIKES) > 1.0:
        raise ValueError(
            "injection_rates and lookalike_rate together exceed 1 (more problem orders than orders)"
        )
    return rates, la_rate


def _count(rate: float, orders: int) -> int:
    return 0 if rate <= 0 else max(1, round(rate * orders))


def generate(
    out_dir: Path,
    *,
    orders: int,
    days: int,
    seed: int,
    start_date: date,
    rules: dict,
    injection_rates: dict[str, float] | None = None,
    lookalike_rate: float | None = None,
    outage: bool = True,
    contract_breaks: bool = True,
    delivery: str = "daily",
) -> GenerationSummary:
    """Write the deterministic demo data set.

    Args:
        out_dir: output root; stream files go to `<system>/<stream>/<YYYY-MM-DD>.<ext>`.
        orders: number of storefront orders (>= 1).
        days: number of days in the window (>= 1), starting at `start_date`.
        seed: random seed; the same arguments give byte-identical files.
        start_date: first day of the window (UTC).
        rules: the `rules:` section of the config (grace windows, tolerances, FX rates).
        injection_rates: share of orders per diff type that get an injected problem
            (default 0.006 each); keys are diff types (contract_violation is not generated).
        lookalike_rate: share of orders per look-alike kind (default 0.006 each).
        outage: drop the ERP documents file of one mid-window day (needs days >= 5).
        contract_breaks: append one extra record per stream that breaks the stream's contract
            (quarantined by the contract checks; they belong to no real order, so the ground truth
            is the same either way) and list them in contract_breaks.csv.
        delivery: ``daily`` (each day's file holds that day's changes) or ``snapshot`` (each day's
            file is a full export of every record as of that day's end; the ground truth is the same).

    Returns:
        A GenerationSummary of rows, files, injected problems, look-alikes and stale days.
    """
    rates, la_rate = _validate(orders, days, seed, start_date, injection_rates, lookalike_rate)
    if not isinstance(contract_breaks, bool):
        raise ValueError(f"contract_breaks must be True or False, got {contract_breaks!r}")
    ruleset = RuleSet.from_config(rules)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_previous(out_dir)

    rng = random.Random(seed)
    clock = Clock()
    start_ts = day_start_ts(start_date)
    end_date = start_date + timedelta(days=days - 1)
    outage_day = days // 2 if outage and days >= 5 else None
    outages = {"erp": {outage_day}} if outage_day is not None else {}
    sink = Sink(clock, start_ts, days, outages)
    steps = Steps(sink, ruleset, rng, clock, LATE_ARRIVAL_RATE)
    scenarios = Scenarios(steps, sink, ruleset, rng)

    # Customers: ~70% exist before the window (all in the first CRM file), the rest are new.
    n_customers = max(1, orders // 3)
    n_existing = max(1, n_customers - (n_customers * 3) // 10)
    scenarios.n_customers = n_customers
    profiles = [(rng.choice(SEGMENTS), rng.choice(PLANS)) for _ in range(n_customers)]
    for number in range(1, n_existing + 1):
        seg, plan = profiles[number - 1]
        scenarios.account(f"CUS-{number:06d}", seg, plan, start_ts - rng.randint(DAY, 700 * DAY))
    for number in sorted(rng.sample(range(1, n_existing + 1), n_existing // 50)):
        seg, _ = profiles[number - 1]
        scenarios.account(f"CUS-{number:06d}", seg, rng.choice(PLANS), start_ts + rng.randrange(days * DAY))

    # Orders: times spread over the window at local shopping hours, numbered in time order.
    cur_names = [c for c, _ in _CURRENCIES]
    cur_weights = [w for _, w in _CURRENCIES]
    hours = list(range(24))
    end_ts = start_ts + days * DAY
    placed: list[tuple[int, str]] = []
    currencies = rng.choices(cur_names, cur_weights, k=orders)
    local_hours = rng.choices(hours, _HOUR_WEIGHTS, k=orders)
    for i in range(orders):
        cur = currencies[i]
        naive = start_ts + rng.randrange(days) * DAY + local_hours[i] * 3600 + rng.randrange(3600)
        t0 = naive - clock.offset(STORE_TZ[cur], naive)
        if t0 < start_ts:
            t0 += DAY
        elif t0 >= end_ts:
            t0 -= DAY
        placed.append((t0, cur))
    placed.sort()

    # Which orders get an injected problem (early enough to show inside the window) or a look-alike.
    plan_of: dict[int, tuple] = {}
    cutoff_ts = start_ts + max(1, days - 6) * DAY
    pool = [i for i in range(orders) if placed[i][0] < cutoff_ts] if days >= 8 else list(range(orders))
    wanted: list[tuple[str, str, str]] = []
    for diff_type, kinds in INJECTIONS.items():
        if diff_type == "orphan_record":
            continue
        n = _count(rates[diff_type], orders)
        wanted.extend((diff_type, *kinds[k % len(kinds)]) for k in range(n))
    chosen = rng.sample(pool, min(len(wanted), len(pool)))
    for index, injection in zip(chosen, wanted, strict=False):
        plan_of[index] = ("inject", *injection)
    free = [i for i in range(orders) if i not in plan_of]
    la_wanted = [kind for kind in LOOKALIKES for _ in range(_count(la_rate, orders))]
    for index, kind in zip(rng.sample(free, min(len(la_wanted), len(free))), la_wanted, strict=False):
        plan_of[index] = ("lookalike", kind)

    lookalike_counts: dict[str, int] = dict.fromkeys(LOOKALIKES, 0)
    lookalike_counts["new_customer_added_next_day"] = 0
    lookalike_counts["records_landing_a_day_late"] = 0
    catalogue = [(f"SKU-{k:05d}", _price(rng)) for k in range(1, 401)]
    digital = [(f"DIG-{k:04d}", _price(rng)) for k in range(1, 61)]
    seen_new: set[int] = set()
    extra_customer = n_customers
    for i, (t0, cur) in enumerate(placed):
        plan = plan_of.get(i)
        if plan is not None and plan[0] == "inject" and plan[1] == "missing_enrichment":
            extra_customer += 1
            number = extra_customer  # a customer of its own, so no other order shares the problem
        else:
            number = rng.randint(1, n_customers)
            if number > n_existing and number not in seen_new:
                seen_new.add(number)
                seg, cplan = profiles[number - 1]
                due = steps.due(t0, "missing_enrichment")
                day = min(sink.day_of(t0) + 1, due)
                scenarios.account(f"CUS-{number:06d}", seg, cplan, start_ts + day * DAY + rng.randrange(DAY))
                lookalike_counts["new_customer_added_next_day"] += 1
        features: set[str] = set()
        if plan is None:
            features = _natural_features(rng)
        elif plan[0] == "lookalike":
            features = {plan[1]}
        is_digital = "activation" in features or (
            plan is not None and plan[0] == "inject" and plan[3] == "activated_never_paid"
        )
        order = _make_order(
            rng, clock, f"SO-{i + 1:07d}", number, cur, t0, digital if is_digital else catalogue
        )
        if plan is not None and plan[0] == "inject":
            scenarios.inject(order, plan[1], plan[2], plan[3])
        else:
            if "multi_shipment" in features and order.line_count < 2:
                features.discard("multi_shipment")
            for kind in scenarios.clean(order, features):
                lookalike_counts[kind] += 1

    # Orphans: records for order numbers that never exist (SO-9 plus 7 digits).
    orphan_kinds = INJECTIONS["orphan_record"]
    lo = start_ts
    hi = cutoff_ts if days >= 8 else end_ts
    for k in range(_count(rates["orphan_record"], orders)):
        system, variant = orphan_kinds[k % len(orphan_kinds)]
        cur = rng.choices(cur_names, cur_weights)[0]
        ts = rng.randrange(lo, hi)
        order = _make_order(rng, clock, f"SO-9{k + 1:07d}", rng.randint(1, n_existing), cur, ts, catalogue)
        scenarios.orphan(system, variant, order, ts)

    files = write_files(out_dir, sink, start_date, days, delivery)
    lookalike_counts["records_landing_a_day_late"] = _count_late(sink)
    if contract_breaks:
        breaks = write_contract_breaks(
            out_dir,
            sink,
            clock,
            seed=seed,
            start_date=start_date,
            days=days,
            customers=n_existing,
            files=files,
        )
    else:
        breaks = []
        remove_contract_breaks_csv(out_dir)

    truth = [
        TruthRow(
            first=start_date + timedelta(days=t.first),
            order_id=t.order_id,
            diff_type=t.diff_type,
            system=t.system,
            last=None if t.last is None else start_date + timedelta(days=t.last),
            injected=t.injected,
        )
        for t in steps.truth
    ]
    write_ground_truth(out_dir, truth)
    stale = [("erp", start_date + timedelta(days=outage_day))] if outage_day is not None else []
    write_stale(out_dir, stale)

    injected: dict[str, int] = dict.fromkeys((d for d in DIFF_TYPES), 0)
    injected_by_system: dict[str, int] = {}
    incidental = 0
    for row in truth:
        if row.kind == "incidental":
            incidental += 1
            continue
        injected[row.diff_type] += 1
        key = f"{row.diff_type}/{row.system}"
        injected_by_system[key] = injected_by_system.get(key, 0) + 1
    rows = dict.fromkeys(STREAMS, 0)
    for path, n in files.items():
        rows[path.rsplit("/", 1)[0]] += n
    manifest = {
        "generator": "ingestion.demo",
        "parameters": {
            "orders": orders,
            "days": days,
            "seed": seed,
            "start_date": start_date.isoformat(),
            "injection_rates": rates,
            "lookalike_rate": la_rate,
            "outage": outage,
            "delivery": delivery,
            "contract_breaks": contract_breaks,
            "late_arrival_rate": LATE_ARRIVAL_RATE,
        },
        "seed": seed,
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "systems": SYSTEM_ROLES,
        "outage": [{"system": s, "as_of_date": d.isoformat()} for s, d in stale],
        "customers": extra_customer,
        "rows": rows,
        "injected": injected,
        "injected_by_system": dict(sorted(injected_by_system.items())),
        "incidental": incidental,
        "contract_breaks": [f"{b.system}/{b.stream}: {b.rule_id}" for b in breaks],
        "lookalikes": lookalike_counts,
        "files": files,
    }
    (out_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return GenerationSummary(
        out_dir=out_dir,
        start_date=start_date,
        end_date=end_date,
        orders=orders,
        customers=extra_customer,
        rows=rows,
        files_written=len(files) + 3 + (1 if breaks else 0),
        injected=injected,
        injected_by_system=dict(sorted(injected_by_system.items())),
        lookalikes=lookalike_counts,
        stale=stale,
        incidental=incidental,
        contract_breaks=len(breaks),
        files=files,
    )


def _price(rng: random.Random) -> int:
    """A catalogue price in cents, log-uniform between 1.99 and 499.99, ending in 9."""
    return int(math.exp(rng.uniform(math.log(199), math.log(49999)))) // 10 * 10 + 9


def _natural_features(rng: random.Random) -> set[str]:
    features: set[str] = set()
    r = rng.random()
    acc = 0.0
    for name in (
        "cancelled_before_payment",
        "cancelled_after_payment_refunded",
        "partial_refund_credited",
        "returned_refunded",
    ):
        acc += _NATURAL[name]
        if r < acc:
            features.add(name)
            break
    if rng.random() < _NATURAL["activation"]:
        features.add("activation")
    elif rng.random() < _NATURAL["multi_shipment"]:
        features.add("multi_shipment")
    elif rng.random() < _NATURAL["shipment_cancelled_reshipped"]:
        features.add("shipment_cancelled_reshipped")
    if rng.random() < _NATURAL["order_exported_after_payment"]:
        features.add("order_exported_after_payment")
    for group in (_NATURAL_PAYMENT, _NATURAL_INVOICE):
        r = rng.random()
        acc = 0.0
        for name, p in group:
            acc += p
            if r < acc:
                features.add(name)
                break
    return features


def _make_order(
    rng: random.Random,
    clock: Clock,
    oid: str,
    number: int,
    cur: str,
    t0: int,
    catalogue: list[tuple[str, int]],
) -> Order:
    cust = f"CUS-{number:06d}"
    n_lines = rng.choices((1, 2, 3, 4, 5), (35, 30, 18, 10, 7))[0]
    lines = []
    parts = []
    for sku, price in rng.sample(catalogue, n_lines):
        qty = 1 if sku.startswith("DIG") else rng.choices((1, 2, 3), (70, 20, 10))[0]
        line_total = qty * price
        lines.append((sku, qty, price, line_total))
        parts.append(
            f'{{"sku": "{sku}", "qty": {qty}, "unit_price": "{money(price)}", "line_total": "{money(line_total)}"}}'
        )
    tz = STORE_TZ[cur]
    return Order(
        oid=oid,
        cust=cust,
        cust_json=f'{{"id": "{cust}", "email": "customer{number:06d}@example.com"}}',
        cur=cur,
        tz=tz,
        lines=lines,
        total=sum(line[3] for line in lines),
        t0=t0,
        created=clock.iso_local(t0, tz),
        lines_json="[" + ", ".join(parts) + "]",
    )


def _count_late(sink: Sink) -> int:
    """Records written to a later file than the day of their update time (late or outage)."""
    n = 0
    for buckets in sink.buckets.values():
        for day, rows in buckets.items():
            for ts, _ in rows:
                if (ts - sink.start_ts) // DAY < day and ts >= sink.start_ts:
                    n += 1
    return n
