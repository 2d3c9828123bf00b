"""dbt run inside the Dagster process (dagster_project/dbt/dbt_in_process.py), on a small dbt project of
its own: what a dbt subprocess gave through dagster-dbt must still hold.

Real dbt, real DuckDB file, real Dagster materializations (an ephemeral instance).
"""


import json
import os
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DagsterDbtCliRuntimeError, DbtCliResource, DbtProject, dbt_assets

from dagster_project.dbt import dbt_in_process
from dagster_project.dbt.dbt_project import ReconDbtCliResource
from dagster_project.lib.database import connect

MODELS = {
    "orders.sql": "select * from (values (1, 'A-1', 10.5), (2, 'A-2', 20.0)) t(id, order_no, amount)",
    "big_orders.sql": "select * from {{ ref('orders') }} where amount > {{ var('threshold') }}",
    "broken.sql": "select cast('{{ var('broken_value') }}' as integer) as n from {{ ref('orders') }}",
}
SCHEMA = """
version: 2
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique, not_null]
  - name: big_orders
    columns:
      - name: order_no
        data_tests:
          - accepted_values: {arguments: {values: ['A-2']}}
"""


@pytest.fixture(autouse=True)
def _targets_in_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # dagster-dbt puts each invocation's folder under $DBT_TARGET_PATH; the platform points it at the
    # config's target (set_dbt_env), and so does this test, at its own project's.
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "project" / "target"))


def _project(tmp: Path) -> Path:
    project = tmp / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nconfig-version: 2\nprofile: tiny\nmodel-paths: ['models']\n"
        "vars: {threshold: 15, broken_value: '7'}\nmodels: {tiny: {+materialized: table}}\n")
    (project / "profiles.yml").write_text(
        f"tiny:\n  target: d\n  outputs:\n    d:\n      type: duckdb\n      path: '{tmp / 'tiny.duckdb'}'\n"
        "      threads: 2\n")
    for name, sql in MODELS.items():
        (project / "models" / name).write_text(sql)
    (project / "models" / "schema.yml").write_text(SCHEMA)
    return project


def _assets(project_dir: Path, vars_json: str) -> dg.AssetsDefinition:
    target = project_dir / "target"
    dbt_in_process.parse_project(project_dir, project_dir, target, vars_json)
    project = DbtProject(project_dir=project_dir, target_path=target)

    @dbt_assets(manifest=project.manifest_path, project=project)
    def tiny(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(["build", "--vars", vars_json], context=context).stream()

    return tiny


def _materialize(assets: dg.AssetsDefinition, project_dir: Path, **kwargs) -> dg.ExecuteInProcessResult:
    dbt = ReconDbtCliResource(project_dir=str(project_dir), dbt_executable=str(Path(sys.executable).parent / "dbt"))
    return dg.materialize([assets], resources={"dbt": dbt},
                          raise_on_error=False, **kwargs)


def test_a_build_in_process_materializes_every_model_reports_every_test_and_frees_the_database(
        tmp_path: Path) -> None:
    project_dir = _project(tmp_path)
    vars_json = json.dumps({"threshold": 15, "broken_value": "7"})
    assets = _assets(project_dir, vars_json)

    result = _materialize(assets, project_dir)
    assert result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"orders", "big_orders", "broken"}
    checks = {(e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {("orders", "unique_orders_id"): True, ("orders", "not_null_orders_id"): True,
                      ("big_orders", "accepted_values_big_orders_order_no__A_2"): True}

    # dbt's artifacts and its log are in the invocation's own folder, as with a dbt subprocess; the log
    # at info (each node's start and result), not dbt's default debug (every statement it runs)
    runs = [p for p in (project_dir / "target").iterdir() if p.is_dir() and (p / "run_results.json").exists()]
    assert len(runs) == 1
    log = (runs[0] / "dbt.log").read_text()
    assert "big_orders" in log and "[info ]" in log and "[debug]" not in log

    # dbt-duckdb released the file: the same process opens it read-only, as the report and the CLI do
    con = connect(tmp_path / "tiny.duckdb", read_only=True)
    try:
        assert con.execute("select order_no from main.big_orders").fetchall() == [("A-2",)]
    finally:
        con.close()


def test_dbts_own_log_level_variable_brings_the_debug_log_back(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    project_dir = _project(tmp_path)
    vars_json = json.dumps({"threshold": 15, "broken_value": "7"})
    assert _materialize(_assets(project_dir, vars_json), project_dir).success
    logs = [p / "dbt.log" for p in (project_dir / "target").iterdir() if (p / "run_results.json").exists()]
    assert len(logs) == 1 and "[debug]" in logs[0].read_text() and "create  table" in logs[0].read_text()


def test_a_failing_model_fails_the_step_with_dbts_reason_and_the_rest_still_runs(tmp_path: Path) -> None:
    project_dir = _project(tmp_path)
    vars_json = json.dumps({"threshold": 15, "broken_value": "not a number"})
    result = _materialize(_assets(project_dir, vars_json), project_dir)

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure.cls_name == DagsterDbtCliRuntimeError.__name__
    assert "exit code `1`" in failure.message and "not a number" in failure.message  # dbt's own words
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"orders", "big_orders"}


def test_a_selected_subset_runs_only_that_model_and_its_tests(tmp_path: Path) -> None:
    project_dir = _project(tmp_path)
    vars_json = json.dumps({"threshold": 15, "broken_value": "7"})
    assets = _assets(project_dir, vars_json)

    result = _materialize(assets, project_dir, selection=[dg.AssetKey("orders")])
    assert result.success
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {"orders"}
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {"unique_orders_id",
                                                                           "not_null_orders_id"}


def test_the_parsed_manifest_is_kept_until_the_project_is_prepared_again(tmp_path: Path) -> None:
    project_dir = _project(tmp_path)
    target = project_dir / "target"
    vars_json = json.dumps({"threshold": 15, "broken_value": "7"})
    first = dbt_in_process.parse_project(project_dir, project_dir, target, vars_json)
    assert dbt_in_process.parsed_manifest(project_dir, project_dir, target, vars_json) is first

    # a new model, prepared again: the next command sees it
    (project_dir / "models" / "small_orders.sql").write_text("select * from {{ ref('orders') }} where amount < 15")
    dbt_in_process.parse_project(project_dir, project_dir, target, vars_json)
    again = dbt_in_process.parsed_manifest(project_dir, project_dir, target, vars_json)
    assert again is not first and "model.tiny.small_orders" in again.nodes

    # a command's environment is its own: the process's comes back after it
    outcome = dbt_in_process.invoke(["parse", "--quiet", "--project-dir", str(project_dir), "--profiles-dir",
                                     str(project_dir), "--target-path", str(target), "--vars", vars_json],
                                    env={"RECON_TEST_ONLY_FOR_DBT": "1"})
    assert outcome.returncode == 0 and "RECON_TEST_ONLY_FOR_DBT" not in os.environ

    # a project dbt cannot parse is refused with dbt's reason
    (project_dir / "models" / "bad.sql").write_text("select * from {{ ref('no_such_model') }}")
    with pytest.raises(dbt_in_process.DbtParseError, match="no_such_model"):
        dbt_in_process.parse_project(project_dir, project_dir, target, vars_json)
