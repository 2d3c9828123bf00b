"""recon's Dagster instance keeps Dagster's SQLite files as they are: what one writes, the other reads.

recon's dagster.yaml names dagster_project.runs.instance_storage (one kept SQLAlchemy engine per SQLite file
instead of one per connection). The files must stay Dagster's own layout, so that an instance folder written
before, or opened by plain Dagster, reads the same runs, events and asset records.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.runs import instance_storage
from dagster_project.runs.runner import DAGSTER_YAML, dagster_home


@dg.asset
def counted() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset(deps=[counted], check_specs=[dg.AssetCheckSpec("positive", asset="reported")])
def reported():
    yield dg.Output(None)
    yield dg.AssetCheckResult(check_name="positive", passed=True)


def _run(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([counted, reported], instance=instance)
    assert result.success
    return result.run_id


def test_recons_sqlite_storage_and_dagsters_read_each_others_runs(demo_config) -> None:
    home = dagster_home(demo_config)
    with dg.DagsterInstance.get() as ours:
        assert isinstance(ours.run_storage, instance_storage.SqliteRunStorage)
        assert isinstance(ours.event_log_storage, instance_storage.SqliteEventLogStorage)
        first = _run(ours)
        second = _run(ours)  # the kept engines serve a second run and its new shard
        ours_events = {run: len(ours.all_logs(run)) for run in (first, second)}

    (home / "dagster.yaml").write_text(DAGSTER_YAML)  # plain Dagster classes on the same folder
    with dg.DagsterInstance.get() as plain:
        assert type(plain.event_log_storage).__module__.startswith("dagster._core")
        assert {r.run_id for r in plain.get_runs()} == {first, second}
        assert {run: len(plain.all_logs(run)) for run in (first, second)} == ours_events
        latest = plain.get_latest_materialization_event(dg.AssetKey("counted"))
        assert latest.run_id == second and latest.asset_materialization.metadata["rows"].value == 3
        check = plain.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("reported"), "positive")])
        assert next(iter(check.values())).run_id == second
        third = _run(plain)

    dagster_home(demo_config)  # recon writes its own settings back; it reads what plain Dagster wrote
    with dg.DagsterInstance.get() as ours:
        assert isinstance(ours.event_log_storage, instance_storage.SqliteEventLogStorage)
        assert ours.get_latest_materialization_event(dg.AssetKey("counted")).run_id == third
        assert len(ours.get_runs()) == 3


def test_a_deleted_instance_folder_is_opened_anew_in_the_same_process(demo_config) -> None:
    # `recon demo --fresh` removes the state folder and runs again in the same process: a connection kept
    # open on a deleted file would write the new runs' events into it, and nothing would read them.
    import shutil

    home = dagster_home(demo_config)
    with dg.DagsterInstance.get() as ours:
        gone = _run(ours)
        shard = instance_storage._ENGINES[ours.event_log_storage.conn_string_for_shard(gone)]
        assert shard.pool.checkedin() == 1  # kept open between uses: no checkpoint and re-open per event
    shutil.rmtree(home)
    home = dagster_home(demo_config)
    with dg.DagsterInstance.get() as ours:
        fresh = _run(ours)
        assert {r.run_id for r in ours.get_runs()} == {fresh}
        events = len(ours.all_logs(fresh))
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.get() as plain:  # what is on disk, read by Dagster's own classes
        assert {r.run_id for r in plain.get_runs()} == {fresh}
        assert len(plain.all_logs(fresh)) == events > 0
        assert plain.get_latest_materialization_event(dg.AssetKey("counted")).run_id == fresh


def test_a_forked_child_opens_its_own_connections(demo_config) -> None:
    import os

    dagster_home(demo_config)
    with dg.DagsterInstance.get() as ours:
        first = _run(ours)
        assert instance_storage._ENGINES
        pid = os.fork()
        if pid == 0:  # the child: none of the parent's engines, and a run of its own works
            code = 1
            try:
                if not instance_storage._ENGINES:
                    with dg.DagsterInstance.get() as child:
                        code = 0 if dg.materialize([counted], instance=child).success else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(ours.get_runs()) == 2 and ours.get_runs()[-1].run_id == first  # the parent's still serve it


def test_the_kept_engines_are_bounded() -> None:
    before = dict(instance_storage._ENGINES)
    try:
        for i in range(instance_storage._MAX_ENGINES + 10):
            instance_storage._engine(f"sqlite:////tmp/recon-engine-bound-{i}.db")
        assert len(instance_storage._ENGINES) == instance_storage._MAX_ENGINES
        assert "sqlite:////tmp/recon-engine-bound-0.db" not in instance_storage._ENGINES  # oldest first out
    finally:
        instance_storage._ENGINES.clear()
        instance_storage._ENGINES.update(before)
