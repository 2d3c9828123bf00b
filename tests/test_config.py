"""The config loader: the demo config is valid; bad configs fail naming file, key and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recon.yaml"
    path.write_text(textwrap.dedent(text))
    return path


MINIMAL = """\
version: 1
project:
  start_date: 2026-10-01
  duckdb_path: {db}
systems:
  shop:
    role: orders
    path: /data/shop
    streams:
      orders:
        format: jsonl
        glob: "*.jsonl"
        primary_key: id
        fields:
          order_id: id
          status: state
          currency: {{from: cur, transform: upper}}
          total_amount: total
          ordered_at: created
          updated_at: updated
"""


def test_demo_config_is_valid_and_covers_every_role():
    config = load_config(DEMO_CONFIG_PATH, env={})
    assert set(config.roles) == {"orders", "payments", "invoices", "fulfillments", "customers"}
    assert config.systems["psp"].streams["charges"].fields["amount"].unit == "minor"
    assert config.rules.grace_hours["missing_invoice"] == 48
    assert str(config.duckdb_path).endswith(".recon/warehouse.duckdb")


def test_env_interpolation_with_default_and_override(tmp_path):
    config = load_config(DEMO_CONFIG_PATH, env={"RECON_HOME": str(tmp_path / "h")})
    assert config.duckdb_path == (tmp_path / "h" / "warehouse.duckdb").resolve()


def test_missing_env_var_without_default_is_named(tmp_path):
    path = write(tmp_path, MINIMAL.format(db="${NOPE_NOT_SET}/x.duckdb"))
    with pytest.raises(ConfigError, match=r"project.duckdb_path: environment variable NOPE_NOT_SET"):
        load_config(path, env={})


def test_minimal_config_fills_defaults_and_unmapped_fields(tmp_path):
    config = load_config(write(tmp_path, MINIMAL.format(db=tmp_path / "x.duckdb")), env={})
    fields = config.dbt_vars("2026-10-02")["recon"]["systems"]["shop"]["streams"]["orders"]["fields"]
    assert fields["total_amount"]["type"] == "decimal"  # the canonical type by default
    assert fields["line_count"] == {**fields["line_count"], "from": None, "value": None, "type": "integer"}
    assert config.dbt_vars("2026-10-02")["as_of_date"] == "2026-10-02"
    assert config.roles == {"orders": ["shop"]}


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (("role: orders", "role: order"), r"systems.shop.role \(line 7\): Input should be 'orders'"),
        (("total_amount: total", "total_amount: {from: total, unit: cents}"),
         r"systems.shop.streams.orders.fields.total_amount.unit \(line \d+\).*'minor'.*cents"),
        (("start_date: 2026-10-01", "start_date: 2026-13-01"), r"project.start_date \(line 3\)"),
        (("          status: state\n", ""), r"needs field\(s\) \['status'\]"),
        (("          status: state\n", "          colour: state\n"), r"unknown field\(s\) \['colour'\]"),
        (("glob:", "globb:"), r"globb \(line \d+\): unknown key"),
        (("total_amount: total", "total_amount: {from: total, value: '1'}"), r"exactly one of 'from'"),
    ],
)
def test_bad_config_names_key_line_and_expectation(tmp_path, replace, expected):
    text = MINIMAL.format(db=tmp_path / "x.duckdb").replace(*replace)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message
    import re

    assert re.search(expected, message, re.S), message


def test_bad_rules_and_owners_are_named(tmp_path):
    text = MINIMAL.format(db=tmp_path / "x.duckdb") + textwrap.dedent("""\
        rules:
          grace_hours: {missing_paymnt: 3}
          fx_rates: [{from: EURO, to: USD, rate: 1.1}]
        owners:
          by_state: {PAYED: someone}
        schedule: nope
        """)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    message = str(info.value)
    assert "rules.grace_hours (line 22): unknown diff type(s) ['missing_paymnt']" in message
    assert "rules.fx_rates.0.from" in message and "3-letter ISO currency code" in message
    assert "owners.by_state" in message and "PAYED" in message
    assert "schedule (line 26): unknown key" in message


def test_report_workbook_rows_is_bounded_by_what_excel_shows(tmp_path):
    base = MINIMAL.format(db=tmp_path / "x.duckdb")
    assert load_config(write(tmp_path, base), env={}).report.workbook_rows == 10_000
    assert load_config(write(tmp_path, base + "report: {workbook_rows: 250}\n"), env={}).report.workbook_rows == 250
    for bad, said in (("0", "greater than or equal to 1"), ("1048575", "less than or equal to 1048574")):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, base + f"report: {{workbook_rows: {bad}}}\n"), env={})
        assert "report.workbook_rows" in str(info.value) and said in str(info.value), str(info.value)


def test_duckdb_memory_limit_is_a_size_or_a_share_of_the_ram(tmp_path):
    base = MINIMAL.format(db=tmp_path / "x.duckdb")
    assert load_config(write(tmp_path, base), env={}).project.duckdb_memory_limit == "80%"  # DuckDB's default
    for good in ("6GiB", "512MB", "1.5 GB", "50%"):
        text = base.replace("  duckdb_path:", f"  duckdb_memory_limit: '{good}'\n  duckdb_path:")
        assert load_config(write(tmp_path, text), env={}).project.duckdb_memory_limit == good
    for bad in ("lots", "6", "0%", "150%", "6 parsecs"):
        text = base.replace("  duckdb_path:", f"  duckdb_memory_limit: '{bad}'\n  duckdb_path:")
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, text), env={})
        assert "project.duckdb_memory_limit" in str(info.value) and f"got '{bad}'" in str(info.value), str(info.value)


def test_a_connection_takes_the_memory_limit(tmp_path):
    from dagster_project.lib.database import connect

    con = connect(tmp_path / "x.duckdb", memory_limit="1GiB")
    try:
        assert con.execute("select current_setting('memory_limit')").fetchall() == [("1.0 GiB",)]
    finally:
        con.close()


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_unknown_time_zone(tmp_path):
    text = MINIMAL.format(db=tmp_path / "x.duckdb").replace(
        "  duckdb_path:", "  schedule: {cron: '0 2 * * *', timezone: Mars/Olympus}\n  duckdb_path:")
    with pytest.raises(ConfigError, match=r"project.schedule.timezone.*unknown time zone 'Mars/Olympus'"):
        load_config(write(tmp_path, text), env={})


def test_database_file_named_like_a_schema_is_rejected(tmp_path):
    path = write(tmp_path, MINIMAL.format(db=tmp_path / "marts.duckdb"))
    with pytest.raises(ConfigError, match=r"file name 'marts' clashes with the schema 'marts'"):
        load_config(path, env={})


def test_sync_mode_is_per_stream_validated_and_defaulted(tmp_path):
    text = MINIMAL.format(db=tmp_path / "x.duckdb")
    config = load_config(write(tmp_path, text), env={})
    assert config.dbt_vars()["recon"]["systems"]["shop"]["streams"]["orders"]["sync_mode"] == "append"
    snap = text.replace("        primary_key: id\n", "        primary_key: id\n        sync_mode: snapshot\n")
    config = load_config(write(tmp_path, snap), env={})
    assert config.dbt_vars()["recon"]["systems"]["shop"]["streams"]["orders"]["sync_mode"] == "snapshot"
    bad = text.replace("        primary_key: id\n", "        primary_key: id\n        sync_mode: full_refresh\n")
    with pytest.raises(ConfigError, match=r"systems.shop.streams.orders.sync_mode \(line 14\): Input should be "
                                          r"'append', 'append_dedup' or 'snapshot'"):
        load_config(write(tmp_path, bad), env={})


@pytest.mark.parametrize("cron", ["0 25 * * *", "0 2 * *", "every night"])
def test_bad_cron_fails_at_load_naming_key_and_line(tmp_path, cron):
    text = MINIMAL.format(db=tmp_path / "x.duckdb").replace(
        "  duckdb_path:", f"  schedule:\n    cron: \"{cron}\"\n  duckdb_path:", 1)
    with pytest.raises(ConfigError, match=r"project.schedule.cron \(line 5\): expected a cron expression"):
        load_config(write(tmp_path, text), env={})


def test_read_commands_skip_only_the_checks_runs_need(tmp_path):
    """``run_checks=False`` (the CLI's read commands) skips the cron and connector checks, nothing else."""
    text = MINIMAL.format(db=tmp_path / "x.duckdb").replace(
        "  duckdb_path:", "  schedule:\n    cron: \"every night\"\n  duckdb_path:", 1).replace(
        "    path: /data/shop\n", "    path: /data/shop\n    options: {token: abc}\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    assert "project.schedule.cron (line 5): expected a cron expression" in str(refused.value)
    assert "systems.shop" in str(refused.value) and "takes no 'options'" in str(refused.value)
    assert load_config(path, env={}, run_checks=False).project.schedule.cron == "every night"
    with pytest.raises(ConfigError, match=r"systems.shop.streams.orders.sync_mode"):
        load_config(write(tmp_path, text.replace("        primary_key: id\n",
                                                 "        primary_key: id\n        sync_mode: full_refresh\n")),
                    env={}, run_checks=False)


def test_cron_accepts_what_dagster_accepts(tmp_path):
    text = MINIMAL.format(db=tmp_path / "x.duckdb").replace(
        "  duckdb_path:", "  schedule:\n    cron: \"@daily\"\n  duckdb_path:", 1)
    assert load_config(write(tmp_path, text), env={}).project.schedule.cron == "@daily"


def test_freshness_defaults_to_24_hours_and_null_means_never_stale(tmp_path):
    """The documented default (docs/reconciliation-rules.md, README): 24 h; `freshness_hours: null` opts out,
    and then the contract has no freshness rule and dbt gets null (never stale)."""
    from dagster_project.contracts.rules import build_contract

    default = load_config(write(tmp_path, MINIMAL.format(db=tmp_path / "x.duckdb")), env={})
    assert default.systems["shop"].freshness_hours == 24
    assert "freshness" in {r.rule_id for r in build_contract(default, "shop", "orders").rules}
    never = load_config(write(tmp_path, MINIMAL.format(db=tmp_path / "x.duckdb").replace(
        "    path: /data/shop\n", "    path: /data/shop\n    freshness_hours: null\n")), env={})
    assert never.systems["shop"].freshness_hours is None
    assert never.dbt_vars()["recon"]["systems"]["shop"]["freshness_hours"] is None
    assert "freshness" not in {r.rule_id for r in build_contract(never, "shop", "orders").rules}
    docs = (Path(__file__).resolve().parents[1] / "docs" / "reconciliation-rules.md").read_text()
    assert "never stale" in docs and "24" in docs


def test_a_config_without_rules_gets_the_documented_grace_windows(tmp_path):
    # Found by following the README from an empty folder: without a rules section every window was 0 h,
    # so a payment not yet due opened missing_payment on the day the order was placed.
    config = load_config(write(tmp_path, MINIMAL.format(db=tmp_path / "x.duckdb")), env={})
    grace = config.dbt_vars()["recon"]["rules"]["grace_hours"]
    assert grace["missing_payment"] == 24 and grace["missing_invoice"] == 48 and grace["orphan_record"] == 24
