"""A stream whose source fails on every retry: the sync_succeeded check fails naming the system, and no
freshness row is written (the system goes stale, so its orders are ON_HOLD)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.config.model import ReconConfig
from dagster_project.defs.ingestion import assets as ingestion_assets
from dagster_project.resources.duckdb_resource import DuckDBResource


def _asset(config: ReconConfig, root: Path) -> dg.AssetsDefinition:
    psp = config.systems["psp"].model_copy(update={"path": str(root)})
    config = config.model_copy(update={"systems": {"psp": psp}})
    return next(a for a in ingestion_assets.build_ingestion_assets(config) if a.key.path[-1] == "charges")


def _run(asset: dg.AssetsDefinition, db: Path) -> dg.ExecuteInProcessResult:
    partition = asset.partitions_def.get_last_partition_key()
    return dg.materialize(
        [asset],
        resources={"duckdb": DuckDBResource(database=str(db))},
        partition_key=partition,
        raise_on_error=False,
    )


def _landed(db: Path) -> int:
    with duckdb.connect(str(db)) as con:
        return con.execute("SELECT count(*) FROM recon_meta.landed_files").fetchall()[0][0]


def test_source_down_fails_the_check_and_leaves_the_system_stale(
    demo_config: ReconConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion_assets, "MAX_RETRIES", 0)  # no retry delays in the test
    root, db = tmp_path / "psp", tmp_path / "recon.duckdb"
    (root / "charges").mkdir(parents=True)
    (root / "charges" / "a.jsonl").write_text(json.dumps({"id": "c1", "amount": 5}) + "\n")
    asset = _asset(demo_config, root)

    ok = _run(asset, db)
    assert ok.success
    [check] = ok.get_asset_check_evaluations()
    assert check.passed
    assert _landed(db) == 1

    shutil.rmtree(root)  # the system stops delivering: its folder is gone
    failed = _run(asset, db)
    [check] = failed.get_asset_check_evaluations()
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "psp" in (check.description or "")
    assert "does not exist" in check.metadata["error"].value
    assert _landed(db) == 1  # no new freshness row: the system goes stale
    with duckdb.connect(str(db)) as con:
        runs = con.execute("SELECT status FROM recon_meta.sync_runs ORDER BY sync_id").fetchall()
    assert runs == [("succeeded",), ("failed",)]
