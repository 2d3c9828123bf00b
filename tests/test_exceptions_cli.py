"""The owner's CLI against a temporary DuckDB built here: list, show, ack, assign, resolve, accept, reopen, match, order."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dagster_project.lib.config import DEMO_CONFIG_PATH, load_config
from dagster_project.lib.duckdb_resource import connect
from dagster_project.lib.exceptions_cli import exceptions, order
from dagster_project.lib.exceptions_store import exception_id, sync_exceptions

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 3)
ROLES = {"orders": ["shop"], "payments": ["psp"], "invoices": ["erp"]}


@click.group()
@click.option("--config", "config_path")
@click.pass_context
def root(ctx: click.Context, config_path: str) -> None:
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


root.add_command(exceptions)
root.add_command(order)


def diff(order_id, diff_type="missing_invoice", system="erp", role="invoices", severity="high", amount=100.0,
         first=D1, **kw):
    return {"order_id": order_id, "customer_id": f"C-{order_id}", "diff_type": diff_type, "system": system,
            "role": role, "severity": severity, "owner": "x", "amount_at_risk": amount, "currency": "EUR",
            "expected_value": "posted invoice", "actual_value": "none", "systems_involved": "psp,erp",
            "rule": diff_type, "reproduce_sql": "select 1", "reproduce_command": f"recon order {order_id}",
            "first_seen_date": first, **kw}


@pytest.fixture
def env(recon_home: Path, tmp_path: Path):
    # A database file named recon.duckdb makes the catalog "recon" collide with the schema "recon".
    text = DEMO_CONFIG_PATH.read_text().replace("/recon.duckdb", "/warehouse.duckdb")
    config_path = tmp_path / "recon.yaml"
    config_path.write_text(text)
    cfg = load_config(config_path)
    con = connect(cfg.duckdb_path)
    sync_exceptions(con, D1, env_diffs()[:3], set(), ROLES, config=cfg, now=dt.datetime(2026, 10, 2, 2))
    sync_exceptions(con, D2, env_diffs(), set(), ROLES, config=cfg, now=dt.datetime(2026, 10, 4, 2))
    con.close()
    return config_path


def env_diffs() -> list[dict]:
    return [diff("SO-1"), diff("SO-2", amount=2500.0, severity="critical"),
            diff("PAY-9", "orphan_record", "psp", "payments", "medium", 40.0),
            diff("SO-3", "missing_payment", "psp", "payments", "medium", 10.0, first=D2)]


def run(config_path, *args, ok=True):
    result = CliRunner().invoke(root, ["--config", str(config_path), *args], env={"RECON_ACTOR": "ann"})
    if ok:
        assert result.exit_code == 0, result.output
    return result


def listed(config_path, *args) -> list[dict]:
    return json.loads(run(config_path, "exceptions", "list", "--json", *args).output)["exceptions"]


def test_list_with_each_filter(env):
    assert {x["order_id"] for x in listed(env)} == {"SO-1", "SO-2", "SO-3", "PAY-9"}
    assert {x["order_id"] for x in listed(env, "--owner", "payments-ops")} == {"SO-3", "PAY-9"}
    assert {x["order_id"] for x in listed(env, "--type", "orphan_record")} == {"PAY-9"}
    assert {x["order_id"] for x in listed(env, "--min-amount", "1000", "--currency", "eur")} == {"SO-2"}
    assert {x["order_id"] for x in listed(env, "--max-amount", "50", "--currency", "EUR")} == {"SO-3", "PAY-9"}
    assert listed(env, "--currency", "USD") == []
    refused = run(env, "exceptions", "list", "--min-amount", "1000", ok=False)
    assert refused.exit_code == 2 and "--currency" in refused.output and "not comparable" in refused.output
    assert {x["order_id"] for x in listed(env, "--min-age", "1")} == {"SO-1", "SO-2", "PAY-9"}
    assert {x["order_id"] for x in listed(env, "--max-age", "0")} == {"SO-3"}
    assert {x["order_id"] for x in listed(env, "--severity", "critical")} == {"SO-2"}
    assert {x["order_id"] for x in listed(env, "--system", "psp")} == {"SO-3", "PAY-9"}
    assert listed(env, "--status", "resolved") == []
    # past due as of the latest as-of day (2026-10-03, its end), not the wall clock (which is past them all)
    assert [x["order_id"] for x in listed(env, "--overdue")] == ["SO-2", "SO-1"]
    text = run(env, "exceptions", "list", "--limit", "1").output
    assert "... 3 more" in text


def test_show_has_lineage_and_events(env):
    ex_id = exception_id("SO-1", "missing_invoice", "erp")
    out = run(env, "exceptions", "show", ex_id[:8]).output
    assert f"Exception {ex_id}" in out and "routed by:" in out and "billing" in out
    assert "timeline:" in out and "recon order SO-1" in out and "opened" in out
    data = json.loads(run(env, "exceptions", "show", ex_id, "--json").output)
    assert data["exception"]["lineage"]["dbt_model"] == "fct_order_diffs"
    assert [e["event_type"] for e in data["events"]] == ["opened"]
    assert run(env, "exceptions", "show", "zzzzzzzz", ok=False).exit_code == 1


def test_ack_assign_resolve_accept_reopen_record_actor_and_note(env):
    one = exception_id("SO-1", "missing_invoice", "erp")
    two = exception_id("SO-2", "missing_invoice", "erp")
    assert "open -> acknowledged" in run(env, "exceptions", "ack", one, two, "--note", "on it").output
    out = run(env, "exceptions", "assign", one, "--to", "billing-team", "--note", "theirs", "--actor", "bob").output
    assert "owner billing-team" in out
    run(env, "exceptions", "resolve", one, "--note", "posted by hand")
    run(env, "exceptions", "accept", two, "--note", "known ERP lag")
    run(env, "exceptions", "reopen", two, "--note", "lag is over")
    events = json.loads(run(env, "exceptions", "show", one, "--json").output)["events"]
    assert [(e["event_type"], e["actor"], e["reason"]) for e in events] == [
        ("opened", "recon", "missing_invoice found"), ("acknowledged", "ann", "on it"),
        ("assigned", "bob", "theirs"), ("resolved", "ann", "posted by hand")]
    assert {x["order_id"]: x["status"] for x in listed(env, "--status", "all")} == {
        "SO-1": "resolved", "SO-2": "open", "SO-3": "open", "PAY-9": "open"}


def test_refused_actions_fail_with_a_message(env):
    one = exception_id("SO-1", "missing_invoice", "erp")
    result = run(env, "exceptions", "reopen", one, "--note", "x", ok=False)
    assert result.exit_code == 1 and "not allowed" in result.output and "it is open" in result.output
    result = run(env, "exceptions", "resolve", one, ok=False)
    assert result.exit_code == 2 and "--note" in result.output  # a note is required


def test_match_links_an_orphan_by_hand(env):
    orphan = exception_id("PAY-9", "orphan_record", "psp")
    out = run(env, "exceptions", "match", orphan, "--order", "SO-3", "--note", "same customer").output
    assert "open -> resolved" in out
    timeline = json.loads(run(env, "order", "SO-3", "--json").output)
    assert any("matched to order SO-3 by ann" in e["title"] for e in timeline["entries"])


def test_order_timeline_text_json_and_as_of(env):
    out = run(env, "order", "SO-2").output
    assert out.startswith("Order SO-2") and "exceptions: 1 open of 1" in out and "opened" in out
    data = json.loads(run(env, "order", "SO-2", "--json").output)
    assert data["order_id"] == "SO-2" and data["exceptions"][0]["severity"] == "critical"
    early = json.loads(run(env, "order", "SO-3", "--as-of", "2026-10-01", "--json").output)
    assert early["entries"] == []
    assert run(env, "order", "NOPE", ok=False).exit_code == 1
    assert run(env, "order", "SO-2", "--as-of", "10/01", ok=False).exit_code == 2
