"""The documented example configs (docs/examples/stripe.yaml, shopify.yaml) on loopback APIs of their shape.

No real account and no internet: a Stripe-shaped charges API (has_more / starting_after, minor units,
epoch seconds, metadata.order_no, amount_refunded and a nested refunds.data list) and a Shopify-shaped
orders API (Link rel="next" with page_info, updated_at_min, X-Shopify-Access-Token) serve a few orders.
Each example is loaded as written, with only the server's URL and the secrets from the environment,
synced twice for real (429s on the way), then dbt builds the canonical orders for today.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from loopback_api import FakeClock, LoopbackApi, link_header, serve
from test_dbt_models import DbtEnv

from dagster_project.config.model import load_config
from dagster_project.dbt.dbt_codegen import write_generated_files
from ingestion.connectors import stream_for
from ingestion.sync import sync_stream

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
STRIPE_KEY = "rk_test_" + "s" * 24
SHOPIFY_TOKEN = "shpat_" + "t" * 24
NOW = datetime.now(UTC).replace(microsecond=0)  # the syncs land "now": the data is dated before it


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _shop_time(at: datetime) -> str:
    """The time as Shopify writes it: ISO 8601 in the shop's zone (here UTC-5)."""
    return (at - timedelta(hours=5)).replace(tzinfo=None).isoformat() + "-05:00"


def stripe_route(api: LoopbackApi, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """GET /v1/charges: newest first, at most 2 a page whatever the limit, has_more / starting_after."""
    rows = sorted(api.records, key=lambda c: (-c["created"], c["id"]))
    start = 0
    if "starting_after" in q:
        start = [c["id"] for c in rows].index(q["starting_after"]) + 1
    size = min(int(q.get("limit", 10)), 2)
    return 200, {"object": "list", "url": "/v1/charges", "data": rows[start:start + size],
                 "has_more": start + size < len(rows)}, {}


def shopify_route(api: LoopbackApi, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """GET orders.json: oldest update first, 2 a page, Link rel=next/previous with page_info."""
    if "page_info" in q:
        if set(q) - {"page_info", "limit"}:
            return 400, {"errors": "page_info cannot be combined with other parameters"}, {}
        state = json.loads(base64.urlsafe_b64decode(q["page_info"]))
    else:
        state = {"min": q.get("updated_at_min"), "offset": 0}
    rows = sorted(api.records, key=lambda o: datetime.fromisoformat(o["updated_at"]))
    if state["min"]:
        rows = [o for o in rows if datetime.fromisoformat(o["updated_at"]) >= datetime.fromisoformat(state["min"])]
    start, size = state["offset"], 2
    rels = {}
    if start + size < len(rows):
        token = base64.urlsafe_b64encode(json.dumps({**state, "offset": start + size}).encode()).decode()
        rels["next"] = {"limit": q.get("limit", 50), "page_info": token}
    return 200, {"orders": rows[start:start + size]}, ({"Link": link_header(api.base, path, rels)} if rels else {})


def charge(no: int, amount: int, at: datetime, refunds: list[tuple[int, datetime]] = ()) -> dict[str, Any]:
    refund_list = [{"id": f"re_{no}_{i}", "object": "refund", "amount": a, "created": _epoch(t), "status": "succeeded",
                    "currency": "eur"} for i, (a, t) in enumerate(refunds)]
    return {"id": f"ch_{no}", "object": "charge", "amount": amount, "amount_refunded": sum(a for a, _ in refunds),
            "currency": "eur", "status": "succeeded", "customer": None, "created": _epoch(at),
            "metadata": {"order_no": str(no)}, "refunded": bool(refunds),
            "refunds": {"object": "list", "data": refund_list, "has_more": False}}


def order(no: int, total: str, at: datetime, updated: datetime | None = None, cancel: str | None = None) -> dict[str, Any]:
    return {"id": 450789000 + no, "order_number": no, "name": f"#{no}", "currency": "EUR", "total_price": total,
            "cancel_reason": cancel, "customer": {"id": 207119551}, "line_items": [{"id": 1, "quantity": 1}],
            "created_at": _shop_time(at), "updated_at": _shop_time(updated or at)}


@pytest.fixture
def apis() -> Iterator[tuple[LoopbackApi, LoopbackApi]]:
    stripe = LoopbackApi(routes={"/v1/charges": stripe_route}, token=STRIPE_KEY)
    shopify = LoopbackApi(routes={"/admin/api/2024-10/orders.json": shopify_route}, token=SHOPIFY_TOKEN,
                          token_header="X-Shopify-Access-Token")
    servers = [serve(stripe), serve(shopify)]
    yield stripe, shopify
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.mark.slow
def test_stripe_and_shopify_examples_sync_and_reconcile(apis: tuple[LoopbackApi, LoopbackApi], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    stripe, shopify = apis
    d3, d2, d1 = NOW - timedelta(days=3), NOW - timedelta(days=2), NOW - timedelta(days=1)
    shopify.records = [order(1001, "100.00", d3), order(1002, "50.00", d3), order(1003, "80.00", d3),
                       order(1004, "30.00", d3)]
    stripe.records = [charge(1001, 10000, d3 + timedelta(minutes=5)),
                      charge(1002, 5000, d3 + timedelta(minutes=5), [(2000, d2)]),
                      charge(1003, 8000, d3 + timedelta(minutes=5), [(3000, d2), (5000, d1)])]
    env = {"RECON_HOME": str(tmp_path / "home"), "STRIPE_API_BASE": stripe.base, "SHOPIFY_SHOP_URL": shopify.base}
    monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    stripe_cfg = load_config(EXAMPLES / "stripe.yaml", env=env)
    shopify_cfg = load_config(EXAMPLES / "shopify.yaml", env=env)
    config = stripe_cfg.model_copy(update={"systems": {**stripe_cfg.systems, **shopify_cfg.systems}})

    dbt = DbtEnv(tmp_path)
    con = duckdb.connect(str(dbt.db))
    clock = FakeClock()

    def sync(system: str, stream: str) -> Any:
        return sync_stream(con, stream_for(system, config.systems[system], stream), source=clock.source())

    # Night 1, through a 429 on each API.
    stripe.faults = {2: (429, {"Retry-After": "1"})}
    shopify.faults = {1: (429, {"Retry-After": "2"})}
    first_charges, first_orders = sync("stripe", "charges"), sync("shopify", "orders")
    assert (first_charges.records_landed, first_orders.records_landed) == (3, 4)
    assert clock.sleeps.count(1.0) == 1 and clock.sleeps.count(2.0) == 1
    assert all(c[1].get("starting_after") in (None, "ch_1003", "ch_1002", "ch_1001") for c in stripe.calls)
    assert sum("page_info" in q for _, q in shopify.calls) == 1  # 4 orders, 2 a page: one next link

    # Night 2: a second refund on 1002 (the charge changes, its `created` does not); order 1004 cancelled.
    stripe.records[1] = charge(1002, 5000, d3 + timedelta(minutes=5), [(2000, d2), (1500, NOW - timedelta(hours=2))])
    shopify.records[3] = order(1004, "30.00", d3, updated=NOW - timedelta(hours=1), cancel="customer")
    sent = len(shopify.calls)
    second_charges, second_orders = sync("stripe", "charges"), sync("shopify", "orders")
    assert second_charges.records_landed == 3  # a full read: the snapshot in force
    assert second_orders.records_landed == 1  # only 1004; 1001-1003 at the saved cursor are not landed again
    assert shopify.calls[sent][1]["updated_at_min"] == first_orders.state["cursor_value"]
    assert con.execute("select count(*) from raw_shopify.orders").fetchone() == (5,)
    con.close()

    # The day the syncs landed on (the wall clock, after NOW): a suite that crosses midnight UTC between
    # collection (NOW) and the syncs would otherwise build the day before everything landed.
    day = datetime.now(UTC).date().isoformat()
    vars_ = config.dbt_vars(day)
    write_generated_files(dbt.project, vars_)
    dbt.dbt("run", as_of=day, recon=vars_["recon"])
    got = {r[0]: r[1:] for r in dbt.query(
        "select order_id, state, total_amount::varchar, captured_amount::varchar, refunded_amount::varchar, "
        "net_paid_amount::varchar from marts.fct_orders")}
    assert got == {
        "1001": ("RECONCILED", "100.0000", "100.0000", "0.0000", "100.0000"),
        "1002": ("RECONCILED", "50.0000", "50.0000", "35.0000", "15.0000"),
        "1003": ("REFUNDED", "80.0000", "80.0000", "80.0000", "0.0000"),
        "1004": ("CANCELLED", "30.0000", "0.0000", "0.0000", "0.0000"),
    }
    refunds = dbt.query("select payment_id, amount::varchar from intermediate.int_payments_current "
                        "where kind = 'refund' order by payment_id")
    assert refunds == [("re_1002_0", "20.0000"), ("re_1002_1", "15.0000"), ("re_1003_0", "30.0000"),
                       ("re_1003_1", "50.0000")]
    assert dbt.query("select count(*) from marts.fct_order_diffs where as_of_date = ?", [day]) == [(0,)]
