"""The recon CLI's own behaviour: help, config validation, clear errors for bad input."""

from __future__ import annotations

from click.testing import CliRunner

from dagster_project.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), obj={}, env=env or {}, catch_exceptions=False)


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("demo", "demo-data", "run", "ui", "sql", "summary", "config"):
        assert command in result.output


def test_config_validate_on_the_demo_config(tmp_path):
    result = invoke("config", "validate", env={"RECON_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "psp" in result.output and "payments" in result.output
    assert str(tmp_path) in result.output


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nproject: {start_date: 2026-10-01}\nsystems: {}\n")
    result = invoke("--config", str(bad), "config", "validate")
    assert result.exit_code == 1
    assert f"invalid config {bad}" in result.output
    assert "declare at least one source system" in result.output


def test_run_rejects_a_bad_date_and_a_reversed_range(tmp_path):
    env = {"RECON_HOME": str(tmp_path)}
    result = invoke("run", "--date", "2026-02-30", env=env)
    assert result.exit_code == 2 and "expected a date as YYYY-MM-DD" in result.output
    result = invoke("run", "--date", "2026-10-05", "--to", "2026-10-03", env=env)
    assert result.exit_code == 1 and "before --date" in result.output
    result = invoke("run", "--date", "2020-01-01", env=env)
    assert result.exit_code == 1 and "before the configured start date" in result.output


def test_summary_and_sql_without_a_database_say_what_to_do(tmp_path):
    env = {"RECON_HOME": str(tmp_path)}
    result = invoke("summary", env=env)
    assert result.exit_code == 1 and "recon demo" in result.output
    result = invoke("sql", "select 1", env=env)
    assert result.exit_code == 1 and "no database" in result.output
    result = invoke("docs", env=env)
    assert result.exit_code == 1 and "recon demo" in result.output


def test_demo_data_rejects_bad_rates(tmp_path):
    result = invoke("demo-data", "--out", str(tmp_path / "d"), "--rate", "missing_invoice=lots",
                    env={"RECON_HOME": str(tmp_path)})
    assert result.exit_code == 2 and "DIFF_TYPE=RATE" in result.output
