"""sync_system: every stream of a system is synced, in name order; one failing stream does not stop the others."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ingestion.protocol import ConfigError
from ingestion.sync import sync_system


def _system(root: Path) -> dict:
    for stream, rows in (("charges", [{"id": "c1", "amount": 5}, {"id": "c2", "amount": 7}]), ("refunds", [{"id": "r1"}])):
        (root / stream).mkdir(parents=True)
        (root / stream / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "connector": "file_drop",
        "path": str(root),
        "streams": {
            "refunds": {"glob": "refunds/*.jsonl", "format": "jsonl", "primary_key": ["id"]},
            "charges": {"glob": "charges/*.jsonl", "format": "jsonl", "primary_key": ["id"]},
        },
    }


def test_sync_system_syncs_every_stream(tmp_path: Path) -> None:
    con = duckdb.connect()
    results = sync_system(con, "psp", _system(tmp_path / "psp"))
    assert [(r.stream, r.records_landed, r.status) for r in results] == [
        ("charges", 2, "succeeded"),
        ("refunds", 1, "succeeded"),
    ]
    assert con.execute("SELECT count(*) FROM raw_psp.charges").fetchall() == [(2,)]
    assert con.execute("SELECT count(*) FROM raw_psp.refunds").fetchall() == [(1,)]
    landed = con.execute("SELECT stream, count(*) FROM recon_meta.landed_files GROUP BY ALL ORDER BY 1").fetchall()
    assert landed == [("charges", 1), ("refunds", 1)]
    # again: nothing new in any stream
    assert [r.records_read for r in sync_system(con, "psp", _system_again(tmp_path / "psp"))] == [0, 0]


def _system_again(root: Path) -> dict:
    system = {"connector": "file_drop", "path": str(root), "streams": {}}
    for stream in ("charges", "refunds"):
        system["streams"][stream] = {"glob": f"{stream}/*.jsonl", "format": "jsonl", "primary_key": ["id"]}
    return system


def test_failing_stream_does_not_stop_the_others(tmp_path: Path) -> None:
    system = _system(tmp_path / "psp")
    system["streams"]["charges"]["glob"] = "missing/*.jsonl"  # nothing matches on the first sync
    con = duckdb.connect()
    with pytest.raises(ConfigError, match="'charges'"):
        sync_system(con, "psp", system)
    assert con.execute("SELECT count(*) FROM raw_psp.refunds").fetchall() == [(1,)]
    runs = con.execute("SELECT stream, status FROM recon_meta.sync_runs ORDER BY stream").fetchall()
    assert runs == [("charges", "failed"), ("refunds", "succeeded")]
