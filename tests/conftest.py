"""Shared fixtures: an isolated project home (DuckDB file, Dagster instance) per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, ReconConfig, load_config

# Variables recon itself sets in its process for what it starts later: the demo's partition end (the CLI,
# when it loads the demo config, so a UI it starts inherits it) and DuckDB's memory limit (set_dbt_env, for
# dbt's profile). A command run in a test's process (CliRunner, run_days) would leak them into the next
# test on the same worker: a later test's demo config then ends its partitions with another test's data.
_SET_BY_RECON = ("RECON_END_DATE", "RECON_DUCKDB_MEMORY_LIMIT")


@pytest.fixture(autouse=True)
def _no_variables_left_by_earlier_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SET_BY_RECON:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def recon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RECON_HOME, RECON_DEMO_DATA and DAGSTER_HOME under a temporary folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("RECON_HOME", str(home))
    monkeypatch.setenv("RECON_DEMO_DATA", str(tmp_path / "demo-data"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.delenv("RECON_CONFIG", raising=False)
    return home


@pytest.fixture
def demo_config(recon_home: Path) -> ReconConfig:
    """The demo config, pointed at the temporary home."""
    return load_config(DEMO_CONFIG_PATH)


# The heaviest tests (seconds, `make test` on this 2-core machine idle, 2026-12-02; `make test` prints the
# slowest). `pytest -n 2 --dist worksteal` splits the collected tests into two contiguous halves of equal
# count, one per worker, and a worker that runs dry steals from the end of the other's half. So the heavy
# tests are dealt to the two halves longest first, each to the half with less work so far (the halves
# then take light tests to equal counts): both workers start on heavy tests and end on light ones,
# which the idle one can steal, instead of one long test starting last. A test not listed weighs 0.
# Measured idle, same tests: per-file weights dealt alternately 10 min 10 s, these 9 min 01 s.
HEAVY = {
    "tests/test_end_to_end.py::test_every_day_matches_the_ground_truth_and_reruns_change_nothing[900-4-11-True-daily]": 115,
    "tests/faults/test_runs_at_once.py::test_a_range_run_killed_inside_a_step_is_marked_failed_and_its_rerun_equals_an_unkilled_run": 105,
    "tests/test_readme_onboarding.py::test_adding_a_source_system_as_the_readme_says": 88,
    "tests/test_backfill.py::test_backfill_of_a_date_range_equals_the_days_one_by_one": 88,
    "tests/test_end_to_end.py::test_every_day_matches_the_ground_truth_and_reruns_change_nothing[1600-4-5-False-snapshot]": 79,
    "tests/test_ui.py::test_dagster_dev_shows_the_asset_graph_groups_and_the_schedule": 72,
    "tests/test_report_browser.py::test_demo_report_matches_the_marts_and_make_screenshots_takes_the_pictures": 69,
    "tests/faults/test_secrets.py::test_a_canary_secret_appears_in_no_output_file_table_or_message": 59,
    "tests/test_dagster_postgres.py::test_a_night_on_postgres_storage_is_recorded_there_and_no_secret_is_written": 57,
    "tests/faults/test_disk.py::test_a_full_disk_fails_the_night_clearly_and_the_rerun_after_it_is_exact": 39,
    "tests/faults/test_runs_at_once.py::test_a_second_run_fails_naming_the_first_and_with_wait_runs_after_it": 31,
    "tests/faults/test_runs_at_once.py::test_a_run_dagster_launched_waits_for_recon_run_and_recon_run_refuses_while_it_runs": 28,
    "tests/test_onboarding.py::test_validate_data_previews_each_stream_through_connector_contract_and_staging": 26,
    "tests/test_deliveries.py::test_every_delivery_pattern_gives_the_ground_truth_each_night[a]": 24,
    "tests/faults/test_bad_input.py::test_every_class_at_once_through_the_nightly_then_corrected": 23,
    "tests/test_onboarding.py::test_blocked_run_names_stream_column_cause_and_what_to_run_then_the_fixed_config_runs": 21,
    "tests/test_deliveries.py::test_every_delivery_pattern_gives_the_ground_truth_each_night[b]": 20,
    "tests/test_dbt_models.py::test_build_rules_reruns_and_history": 19,
    "tests/test_connectors_external.py::test_source_faker_for_real": 13,
    "tests/test_bench_nightly.py::test_generator_and_hand_written_script_agree_with_the_platform": 13,
    "tests/test_dbt_models.py::test_stale_source_suppresses_and_holds": 12,
    "tests/test_deliveries.py::test_rows_landed_but_invisible_as_of_the_day_are_said_and_opened": 10,
    "tests/test_api_examples.py::test_stripe_and_shopify_examples_sync_and_reconcile": 9,
    "tests/test_dbt_refund_shapes.py::test_refund_and_credit_shapes_net_alike": 9,
    "tests/test_demo_generator.py::test_ground_truth_matches_an_independent_reading_of_the_rules": 8,
    "tests/test_dbt_models.py::test_manual_match_relinks_an_orphan_record": 7,
    "tests/faults/test_runs_at_once.py::test_an_open_session_is_waited_for_and_then_named": 6,
    "tests/test_connectors_external.py::test_a_child_outliving_the_connector_does_not_hang_the_sync": 5,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    heavy = sorted((i for i in items if i.nodeid in HEAVY), key=lambda i: -HEAVY[i.nodeid])
    light = [i for i in items if i.nodeid not in HEAVY]
    halves: tuple[list[pytest.Item], list[pytest.Item]] = ([], [])
    load = [0.0, 0.0]
    for item in heavy:
        side = 0 if load[0] <= load[1] else 1
        halves[side].append(item)
        load[side] += HEAVY[item.nodeid]
    first_count = (len(items) + 1) // 2
    fill = max(0, min(len(light), first_count - len(halves[0])))
    items[:] = halves[0] + light[:fill] + halves[1] + light[fill:]
