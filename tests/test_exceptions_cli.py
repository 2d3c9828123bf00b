"""The owner's CLI against a temporary DuckDB built here: list, show, ack, assign, resolve, accept, reopen, match, order."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dagster_project.cli.exceptions import exceptions, order
from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.exceptions.store import exception_id, sync_exceptions
from dagster_project.lib.database import connect

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


# ---- the owner's queue: order, money, clocks, prefixes, digest ----------------------------------

D3 = dt.date(2026, 10, 4)


@pytest.fixture
def mixed(env):
    """The env store one night later (as of D3), with exceptions in EUR, JPY and USD opened that night."""
    cfg = load_config(env)
    con = connect(cfg.duckdb_path)
    new = [diff("EU-A", amount=900.0, first=D3), diff("EU-D", amount=50.0, first=D3),
           diff("JP-B", amount=125000.0, first=D3, currency="JPY"),
           diff("US-C", amount=1244.91, first=D3, currency="USD"),
           diff("US-F", amount=5.0, severity="critical", first=D3, currency="USD"),
           diff("JP-E", amount=999999.0, severity="low", first=D3, currency="JPY")]
    sync_exceptions(con, D3, [*env_diffs(), *new], set(), ROLES, config=cfg, now=dt.datetime(2026, 12, 1, 23, 30))
    con.close()
    return env


def test_list_sorts_past_due_then_severity_then_amount_within_currency(mixed):
    found = listed(mixed)
    # as of D3 (clock: its end, 2026-10-05 00:00): SO-2, SO-1 and PAY-9 (due exactly then) are past due
    assert [x["order_id"] for x in found] == ["SO-2", "SO-1", "PAY-9", "US-F", "EU-A", "EU-D", "JP-B", "US-C",
                                              "SO-3", "JP-E"]
    assert [x["overdue"] for x in found] == [True] * 3 + [False] * 7
    text = run(mixed, "exceptions", "list").output
    assert "As of 2026-10-04 (latest run): 10 match, 3 past due (LATE)" in text and "past due first, then severity" in text
    assert "JPY 125,000 " in text and "USD 1,244.91 " in text and "EUR 2,500.00 " in text
    assert "1244.9100" not in text and "125000.00" not in text
    lines = text.splitlines()
    assert "LATE" in next(line for line in lines if "SO-2" in line)
    assert "LATE" not in next(line for line in lines if "SO-3" in line)
    short = exception_id("SO-2", "missing_invoice", "erp")[:10]
    assert next(line for line in lines if "SO-2" in line).startswith(short + " ")


def test_show_reads_the_event_log_on_one_clock(mixed):
    from dagster_project.exceptions.store import escalate

    cfg = load_config(mixed)
    con = connect(cfg.duckdb_path)
    # the nightly of D3 escalates on the as-of clock, at a wall-clock time after the syncs above
    escalate(con, cfg, dt.datetime(2026, 10, 5), wall=dt.datetime(2026, 12, 1, 23, 31))
    # an escalation written by an older release: no as-of day, stamped with the as-of clock
    ex_id = exception_id("SO-2", "missing_invoice", "erp")
    con.execute("update recon.exception_events set as_of_date = null, recorded_at = '2026-10-05 00:00:00.000002' "
                "where exception_id = ? and event_type = 'escalated' and reason like '%step 2/%'", [ex_id])
    con.close()
    data = json.loads(run(mixed, "exceptions", "show", ex_id[:6], "--json").output)
    kinds = [(e["as_of_day"], e["event_type"]) for e in data["events"]]
    assert kinds[0] == ("2026-10-01", "opened")
    assert [k for k in kinds if k[1] == "escalated"] == [("2026-10-04", "escalated")] * 2
    assert kinds == sorted(kinds, key=lambda k: k[0])
    assert data["exception"]["overdue"] is True
    text = run(mixed, "exceptions", "show", ex_id).output
    log = text.split("Events (as-of day, then the wall-clock time recorded, UTC):")[1].splitlines()[2:]
    assert log[0].split()[:4] == ["2026-10-01", "2026-10-02", "02:00", "opened"]
    assert log[-1].split()[:4] == ["2026-10-04", "2026-10-05", "00:00", "escalated"]
    assert "PAST DUE as of the latest run" in text and "EUR 2,500.00" in text


def test_a_short_id_prefix_works_anywhere_and_errors_say_why(mixed):
    ex_id = exception_id("SO-1", "missing_invoice", "erp")
    assert f"Exception {ex_id}" in run(mixed, "exceptions", "show", ex_id[:4].upper()).output
    assert "acknowledged" in run(mixed, "exceptions", "ack", ex_id[:5]).output
    short = run(mixed, "exceptions", "show", ex_id[:3], ok=False)
    assert short.exit_code == 1 and "at least 4 characters" in short.output
    unknown = run(mixed, "exceptions", "show", "ffffffffffff", ok=False)
    assert unknown.exit_code == 1 and "no exception id starts with 'ffffffffffff'" in unknown.output


def test_an_ambiguous_prefix_lists_the_candidates(env):
    seen: dict[str, str] = {}
    for i in range(100_000):  # two orders whose exception ids share their first 4 characters
        order_id = f"AMB-{i}"
        prefix = exception_id(order_id, "missing_invoice", "erp")[:4]
        if prefix in seen:
            break
        seen[prefix] = order_id
    cfg = load_config(env)
    con = connect(cfg.duckdb_path)
    sync_exceptions(con, D2, [*env_diffs(), diff(seen[prefix], first=D2), diff(order_id, first=D2)], set(),
                    ROLES, config=cfg, now=dt.datetime(2026, 10, 4, 3))
    con.close()
    result = run(env, "exceptions", "resolve", prefix, "--note", "x", ok=False)
    assert result.exit_code == 1 and "several exception ids" in result.output
    assert seen[prefix] in result.output and order_id in result.output


def test_queue_digests_one_owners_open_work(mixed):
    data = json.loads(run(mixed, "exceptions", "queue", "--owner", "revenue-ops", "--top", "3", "--json").output)
    assert data["as_of"] == "2026-10-04" and data["open"] == 8 and data["overdue"] == 2
    assert data["by_severity"]["critical"] == {"open": 2, "overdue": 1}
    assert data["by_severity"]["high"] == {"open": 5, "overdue": 1}
    assert data["oldest_due"] == "2026-10-02T04:00:00"
    assert [(m["currency"], m["exceptions"], m["amount"], m["overdue_amount"]) for m in data["money_at_risk"]] == [
        ("EUR", 4, 3550.0, 2600.0), ("JPY", 2, 1124999.0, 0), ("USD", 2, 1249.91, 0)]
    assert [x["order_id"] for x in data["top"]] == ["SO-2", "SO-1", "US-F"]
    text = run(mixed, "exceptions", "queue", "--owner", "revenue-ops", "--top", "3").output
    assert "Queue of revenue-ops as of 2026-10-04 (latest run): 8 open, 2 past due" in text
    assert "JPY 1,124,999 in 2 exception(s)" in text and "... 5 more" in text
    nobody = run(mixed, "exceptions", "queue", "--owner", "nobody").output
    assert "0 open, 0 past due" in nobody
    assert run(mixed, "exceptions", "queue", ok=False).exit_code == 2  # --owner (or $RECON_OWNER) is required


def test_order_says_which_owner_is_which(mixed):
    out = run(mixed, "order", "SO-2").output
    assert "exception exception" not in out
    data = json.loads(run(mixed, "order", "SO-2", "--json").output)
    assert [e["details"]["as_of_date"] for e in data["entries"]][:1] == ["2026-10-01"]


HEAVY = ("dagster", "dagster_dbt", "dbt", "great_expectations", "pandas", "pyarrow", "sqlalchemy", "jinja2")


def test_read_commands_import_no_dagster_dbt_gx_or_pandas(mixed):
    """The read commands, run as the `recon` entry point runs them, in a fresh interpreter."""
    ex_id = exception_id("SO-2", "missing_invoice", "erp")
    script = f"""
import json, sys
from click.testing import CliRunner
from dagster_project.cli import cli
commands = [["exceptions", "list", "--help"], ["exceptions", "list"], ["exceptions", "list", "--json"],
            ["exceptions", "list", "--overdue"], ["exceptions", "show", "{ex_id[:6]}"],
            ["exceptions", "show", "{ex_id}", "--json"], ["exceptions", "queue", "--owner", "revenue-ops"],
            ["exceptions", "queue", "--owner", "revenue-ops", "--json"], ["order", "SO-2"], ["order", "SO-2", "--json"],
            ["sql", "select order_id, amount_at_risk from recon.exceptions order by 1"],
            ["sql", "select count(*) as n from recon.exceptions", "--json"]]
failed, loaded = [], []
for batch in (commands, [["--help"]]):  # --help also loads the other domains' commands (for their help lines)
    for args in batch:
        result = CliRunner().invoke(cli, ["--config", {str(mixed)!r}, *args], obj={{}})
        if result.exit_code != 0:
            failed.append([args, result.output, repr(result.exception)])
    loaded.append(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))
print(json.dumps({{"failed": failed, "loaded": loaded}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["failed"] == []
    # The read commands: nothing heavy, not even the report's Jinja; nor --help, now that the report's
    # command (dagster_project/cli/reports.py) no longer sits inside the reports package it imports lazily.
    assert report["loaded"] == [[], []]


def test_sql_prints_aligned_columns_without_pandas(mixed):
    from dagster_project.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(mixed), "sql", "select order_id, amount_at_risk, null as note "
                                      "from recon.exceptions where order_id in ('SO-1', 'SO-2') order by 1"], obj={})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["order_id  amount_at_risk  note", "SO-1            100.0000",
                                          "SO-2           2500.0000"]


def test_the_read_path_benchmark_times_every_command_on_a_home(mixed, tmp_path):
    # bench/bench_read_paths.py on this store (with the two marts it samples orders from): every command
    # it times runs as a `recon` process and succeeds; no time is asserted (docs/performance.md holds them).
    cfg = load_config(mixed)
    con = connect(cfg.duckdb_path)
    con.execute("create schema marts")
    con.execute("create table marts.fct_orders as select *, date '2026-10-03' as as_of_date, 'revenue-ops' as "
                "state_owner from (select order_id, 'PAID' as state from recon.exceptions "
                "union all select 'SO-' || i as order_id, 'RECONCILED' as state from range(100, 140) t(i))")
    con.execute("create table marts.fct_order_diffs as select last_seen_date as as_of_date, order_id, diff_type, "
                "system, severity, expected_value, actual_value, amount_at_risk, currency, diff_type as rule "
                "from recon.exceptions")
    con.close()
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_read_paths.py"
    done = subprocess.run([sys.executable, str(bench), "--home", str(cfg.duckdb_path.parent), "--config", str(mixed),
                           "--repeat", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["size"]["orders"] == 40 + result["size"]["exceptions"]
    assert set(result["results"]) == {"recon order ID", "recon exceptions list", "recon exceptions list --type --overdue",
                                      "recon exceptions show ID", "recon sql (one order)", "recon sql (count by state)"}
