"""Routing: every rule of the chain, its precedence, the last-writer window, dbt meta owners, escalation chains."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dagster_project.config.model import ReconConfig
from dagster_project.exceptions.routing import (
    OrderContext,
    Router,
    cutoff,
    dbt_meta_owners,
    load_order_contexts,
)
from dagster_project.lib.database import connect

D = dt.date(2026, 10, 5)
AT = cutoff(D)  # 2026-10-06 00:00


def diff(diff_type="missing_payment", system="psp", role="payments", severity="medium", amount=10, **extra):
    return {"order_id": "SO-1", "diff_type": diff_type, "system": system, "role": role, "severity": severity,
            "amount_at_risk": amount, "owner": "from-dbt", **extra}


@pytest.fixture
def config(demo_config: ReconConfig) -> ReconConfig:
    return demo_config


def router(config: ReconConfig, **routing) -> Router:
    cfg = config.model_copy(update={"routing": config.routing.model_copy(update=routing)})
    return Router(cfg, dbt_owners={})


def test_without_config_the_dbt_owner_is_kept():
    route = Router(None).route(diff(), None, AT)
    assert (route.owner, route.rule) == ("from-dbt", "diff_owner")


def test_owner_by_diff_type(config):
    route = router(config).route(diff(), None, AT)
    assert (route.owner, route.rule, route.owner_until) == ("payments-ops", "diff_type", None)


def test_orphan_goes_to_the_owner_of_the_role_holding_it(config):
    route = router(config).route(diff("orphan_record", "wms", "fulfillments"), None, AT)
    assert (route.owner, route.rule) == ("fulfillment-ops", "orphan_role")


def test_any_billing_discrepancy_goes_to_revenue_ops_at_once(config):
    # even while another system is the last writer, and whatever the diff type's owner is
    ctx = OrderContext("SO-1", "PAID", None, "psp", AT - dt.timedelta(hours=1))
    route = router(config).route(diff("duplicate_record", "erp", "invoices"), ctx, AT)
    assert (route.owner, route.rule, route.owner_until) == ("revenue-ops", "billing", None)


def test_billing_rule_can_be_turned_off(config):
    route = router(config, billing_owner=None).route(diff("duplicate_record", "erp", "invoices"), None, AT)
    assert (route.owner, route.rule) == ("payments-ops", "diff_type")


def test_last_writer_owns_for_24_hours_then_hands_over(config):
    written = AT - dt.timedelta(hours=5)
    ctx = OrderContext("SO-1", "PAID", None, "wms", written)
    route = router(config).route(diff("missing_payment"), ctx, AT)
    assert (route.owner, route.rule) == ("fulfillment-ops", "last_writer:wms")
    assert route.owner_until == written + dt.timedelta(hours=24)
    assert (route.next_owner, route.next_rule) == ("payments-ops", "diff_type")
    # routed after the window closed: the steady owner directly
    later = router(config).route(diff("missing_payment"), ctx, written + dt.timedelta(hours=24))
    assert (later.owner, later.rule, later.owner_until) == ("payments-ops", "diff_type", None)


def test_last_writer_window_is_configurable_and_can_be_off(config):
    ctx = OrderContext("SO-1", "PAID", None, "wms", AT - dt.timedelta(hours=5))
    assert router(config, last_writer_hours=4).route(diff(), ctx, AT).rule == "diff_type"
    assert router(config, last_writer_hours=0).route(diff(), ctx, AT).rule == "diff_type"
    assert router(config, last_writer_hours=6).route(diff(), ctx, AT).rule == "last_writer:wms"


def test_system_owner_falls_back_to_the_role_owner(config):
    ctx = OrderContext("SO-1", None, None, "psp", AT - dt.timedelta(hours=1))
    route = router(config, system_owners={}).route(diff("missing_fulfillment", "wms", "fulfillments"), ctx, AT)
    assert (route.owner, route.rule) == ("payments-ops", "last_writer:psp")


def test_owner_per_canonical_state_when_the_diff_type_has_none(config):
    cfg = config.model_copy(update={"owners": config.owners.model_copy(update={"by_diff_type": {}})})
    route = Router(cfg, dbt_owners={}).route(diff(), OrderContext("SO-1", "INVOICED"), AT)
    assert (route.owner, route.rule) == ("fulfillment-ops", "state")


def test_dbt_meta_owner_then_fallback(config, tmp_path):
    owners = config.owners.model_copy(update={"by_diff_type": {}, "by_state": {}})
    cfg = config.model_copy(update={"owners": owners})
    assert Router(cfg, dbt_owners={"fct_order_diffs": "analytics"}).route(diff(), None, AT).owner == "analytics"
    route = Router(cfg, dbt_owners={}).route(diff(), None, AT)
    assert (route.owner, route.rule) == ("data-engineering", "fallback")


def test_dbt_meta_owners_are_read_from_the_manifest(config):
    target = config.state_dir / "dbt" / "target"
    target.mkdir(parents=True)
    (target / "manifest.json").write_text(json.dumps({"nodes": {
        "model.x.fct_order_diffs": {"resource_type": "model", "name": "fct_order_diffs",
                                    "config": {"meta": {"dagster": {"owners": ["team:revenue-ops"]}}}},
        "model.x.fct_orders": {"resource_type": "model", "name": "fct_orders",
                               "meta": {"dagster": {"owners": ["finance@example.com", "team:x"]}}},
        "model.x.fct_other": {"resource_type": "model", "name": "fct_other", "meta": {"owner": "not-read"}},
        "test.x.t": {"resource_type": "test", "name": "t", "meta": {"dagster": {"owners": ["team:nobody"]}}},
    }}))
    assert dbt_meta_owners(config) == {"fct_order_diffs": "revenue-ops", "fct_orders": "finance@example.com"}


@pytest.mark.parametrize(("rule", "matches"), [
    ({"diff_types": ["missing_payment"]}, True),
    ({"diff_types": ["missing_invoice"]}, False),
    ({"systems": ["psp"]}, True),
    ({"systems": ["erp"]}, False),
    ({"roles": ["payments"]}, True),
    ({"states": ["VALIDATED"]}, True),
    ({"states": ["PAID"]}, False),
    ({"severities": ["medium"]}, True),
    ({"severities": ["critical"]}, False),
    ({"segments": ["enterprise"]}, True),
    ({"segments": ["smb"]}, False),
    ({"min_amount": 10}, True),
    ({"min_amount": 10.01}, False),
    ({"diff_types": ["missing_payment"], "segments": ["smb"]}, False),
])
def test_explicit_rules_match_on_every_condition(config, rule, matches):
    rules = [{"name": "r", "owner": "key-accounts", **rule}]
    from dagster_project.config.exceptions import RoutingRule

    r = router(config, rules=[RoutingRule.model_validate(x) for x in rules])
    route = r.route(diff(), OrderContext("SO-1", "VALIDATED", "enterprise"), AT)
    assert (route.owner == "key-accounts") is matches
    if matches:
        assert route.rule == "rule:r"


def test_explicit_rules_come_first_and_first_match_wins(config):
    from dagster_project.config.exceptions import RoutingRule

    rules = [RoutingRule(name="a", owner="first", roles=["invoices"]), RoutingRule(name="b", owner="second")]
    assert router(config, rules=rules).route(diff("missing_invoice", "erp", "invoices"), None, AT).owner == "first"
    assert router(config, rules=rules).route(diff(), None, AT).owner == "second"


def test_escalation_chain_by_owner_else_default(config):
    r = Router(config, dbt_owners={})
    assert [s.owner for s in r.escalation_chain("revenue-ops")] == ["revenue-ops-lead", "finance-controller"]
    assert [s.owner for s in r.escalation_chain("payments-ops")] == ["ops-leads", "finance-controller",
                                                                     "data-engineering"]


def test_order_context_from_marts_and_staging(config, tmp_path):
    con = connect(tmp_path / "r.duckdb")
    con.execute("create schema marts; create schema staging")
    con.execute("create table marts.fct_orders (as_of_date date, order_id varchar, state varchar, "
                "customer_segment varchar)")
    con.execute("insert into marts.fct_orders values (?, 'SO-1', 'PAID', 'enterprise')", [D])
    con.execute("create table staging.stg_psp__charges (order_id varchar, updated_at timestamp, available_at timestamp)")
    con.execute("create table staging.stg_wms__shipments (order_id varchar, updated_at timestamp, "
                "available_at timestamp)")
    con.execute("create table staging.stg_shop__orders (order_id varchar, updated_at timestamp, available_at timestamp)")
    con.execute("insert into staging.stg_shop__orders values ('SO-1', '2026-10-04 09:00', null)")
    con.execute("insert into staging.stg_psp__charges values ('SO-1', '2026-10-05 10:00', '2026-10-05 11:00')")
    # written later but landed after the day: not visible as of D
    con.execute("insert into staging.stg_wms__shipments values ('SO-1', '2026-10-05 20:00', '2026-10-06 01:00')")
    # after the day: not visible
    con.execute("insert into staging.stg_psp__charges values ('SO-1', '2026-10-06 10:00', null)")
    contexts = load_order_contexts(con, config, D, ["SO-1", "SO-2"])
    assert contexts["SO-1"] == OrderContext("SO-1", "PAID", "enterprise", "psp", dt.datetime(2026, 10, 5, 10))
    assert contexts["SO-2"] == OrderContext("SO-2")
    con.close()
