"""The Dagster definitions load, are wired together, and the schedule picks the previous day."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, ConfigError, load_config
from dagster_project.dbt.dbt_project import ReconDbtCliResource
from dagster_project.definitions import build_definitions
from dagster_project.defs.reconciliation.schedules import NIGHTLY_JOB, nightly_partition_key
from dagster_project.resources.partitions import daily_partitions
from dagster_project.runs.runner import run_days


def test_definitions_load_with_every_stream_model_and_the_exceptions_asset(demo_config):
    defs = build_definitions(str(demo_config.source_file))
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    for system, system_config in demo_config.systems.items():
        for stream in system_config.streams:
            assert f"raw/{system}/{stream}" in keys
    assert {"marts/fct_orders", "marts/fct_order_diffs", "marts/fct_system_freshness", "exceptions"} <= keys
    assert "staging/stg_psp__charges" in keys
    job = defs.resolve_job_def(NIGHTLY_JOB)
    assert job.partitions_def is not None
    graph = defs.resolve_asset_graph()
    # the dbt source of a stream is the ingestion asset: one connected lineage graph
    parents = graph.get(dg.AssetKey(["staging", "stg_psp__charges"])).parent_keys
    assert dg.AssetKey(["raw", "psp", "charges"]) in parents
    assert dg.AssetKey(["marts", "fct_order_diffs"]) in graph.get(dg.AssetKey("exceptions")).parent_keys
    assert isinstance(defs.resources["dbt"], ReconDbtCliResource)
    # One way through the house: every table a model reads has its producer upstream (no stub assets),
    # and the models that read the exception store run after the asset that writes it.
    graph = defs.resolve_asset_graph()
    stubs = [k for k in graph.get_all_asset_keys() if graph.get(k).metadata.get("dagster/auto_created_stub_asset")]
    assert stubs == []
    for key in graph.get_all_asset_keys():  # a table written outside the graph's steps says who writes it
        if not graph.get(key).is_executable:
            assert "written by" in (graph.get(key).description or ""), key
    resolutions = graph.get(dg.AssetKey(["marts", "fct_exception_resolutions"]))
    assert dg.AssetKey("exceptions") in resolutions.parent_keys
    assert dg.AssetKey(["recon", "manual_matches"]) in graph.get(
        dg.AssetKey(["intermediate", "int_payments_unioned"])).parent_keys
    steps = [n.name for n in job.nodes_in_topological_order]
    assert steps.index("recon_dbt_models") < steps.index("exceptions") < steps.index("recon_dbt_after_exceptions")
    # Each stream's contract: a blocking check that fails only when it blocks, and a non-blocking one for
    # the rows it quarantines (the UI says "blocking" from the declaration), in the nightly job.
    checks = {(key.asset_key.to_user_string(), key.name): graph.get_check_spec(key).blocking
              for key in graph.asset_check_keys if key.name.startswith("contract")}
    streams = [f"raw/{s}/{t}" for s, c in demo_config.systems.items() for t in c.streams]
    assert checks == {**{(k, "contract"): True for k in streams}, **{(k, "contract_rows"): False for k in streams}}
    assert {(k.asset_key.to_user_string(), k.name) for k in job.asset_layer.asset_graph.asset_check_keys} >= set(checks)
    # What the UI shows a user names no repository file: no docs/ paths, no local file:// links.
    for spec in defs.resolve_all_asset_specs():
        shown = f"{spec.description or ''} " + " ".join(
            f"{k}={v}" for k, v in spec.metadata.items() if not k.startswith("dagster_dbt/"))  # those are hidden
        assert not re.search(r"docs/|\.md\b|dagster_project/|file://", shown), (spec.key, shown[:300])


def test_schedule_runs_the_previous_day_in_its_time_zone(demo_config):
    defs = build_definitions(str(demo_config.source_file))
    schedule = defs.resolve_schedule_def("nightly_reconciliation_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Amsterdam"
    when = dt.datetime(2026, 10, 15, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    repo = defs.get_repository_def()
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo)
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-10-14"
    early = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 10, 1, 2, 0, tzinfo=dt.UTC), repository_def=repo)
    assert schedule.evaluate_tick(early).skip_message


def test_partition_key_uses_the_local_date():
    # 00:30 UTC on the 15th is 01:30 in Amsterdam (winter): the run is for the 14th
    assert nightly_partition_key(dt.datetime(2026, 11, 15, 0, 30, tzinfo=dt.UTC), "Europe/Amsterdam") == "2026-11-14"
    # 23:30 UTC on the 14th is already the 15th in Tokyo
    assert nightly_partition_key(dt.datetime(2026, 11, 14, 23, 30, tzinfo=dt.UTC), "Asia/Tokyo") == "2026-11-14"



def test_dbt_resource_knows_the_version_dbt_itself_reports():
    # The resource skips dagster-dbt's `dbt --version` subprocess on each run; its answer must be the one
    # the dbt executable it invokes would give.
    from dagster_dbt import DbtCliResource

    from dagster_project.dbt.dbt_project import DBT_PROJECT_DIR, _dbt_on_path

    _dbt_on_path()
    resource = ReconDbtCliResource(project_dir=str(DBT_PROJECT_DIR))
    asked = DbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=resource.dbt_executable)._cli_version
    assert resource._cli_version == asked


def test_partitions_end_with_the_configured_end_date(recon_home, monkeypatch):
    monkeypatch.setenv("RECON_END_DATE", "2026-10-07")
    config = load_config(DEMO_CONFIG_PATH)
    assert config.project.end_date == dt.date(2026, 10, 7)
    keys = daily_partitions(config).get_partition_keys(current_time=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert keys[0] == "2026-10-01" and keys[-1] == "2026-10-07" and len(keys) == 7  # not up to yesterday
    with pytest.raises(ValueError, match="after the configured end date 2026-10-07"):
        run_days(config, [dt.date(2026, 10, 8)], echo=lambda *_: None)
    defs = build_definitions(str(config.source_file))
    schedule = defs.resolve_schedule_def("nightly_reconciliation_schedule")
    late = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 10, 20, 2, 0, tzinfo=dt.UTC),
                                     repository_def=defs.get_repository_def())
    assert "after the configured end date" in schedule.evaluate_tick(late).skip_message
    monkeypatch.setenv("RECON_END_DATE", "2026-09-30")
    with pytest.raises(ConfigError, match="end_date 2026-09-30 is before start_date 2026-10-01"):
        load_config(DEMO_CONFIG_PATH)


def test_no_model_reads_a_table_it_does_not_declare():
    """A model reads other tables only through ref() or source(): no hidden reads by relation lookup."""
    root = Path(__file__).resolve().parents[1] / "dbt_project"
    hidden = [f"{path.relative_to(root)}:{n}" for path in sorted(root.rglob("*.sql")) if "target" not in path.parts
              for n, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"get_relation\(|existing_relation\(|\bfrom\s+recon(_meta)?\.", line)]
    assert hidden == []
