"""README "Adding a source system", followed literally from an empty folder, as a user at a shell would.

Two systems nobody here wrote, with their own names and columns: a till (`kasse`) that overwrites one
semicolon CSV with a full export every night, and a card acquirer whose JSONL file per day uses its own
status words. Every step is the README's command, run with the installed `recon`: `recon init`, the
user's edits of what it left as TODO (the status words, the snapshot delivery), `config validate`,
`config validate --data --date`, then `run` night after night; the diff table must equal the ground truth.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECON = Path(sys.executable).parent / "recon"
D1, D2 = date(2026, 11, 2), date(2026, 11, 3)

ORDERS_HEADER = "OrderNo;Client;State;Currency;Total;Lines;CreatedAt;UpdatedAt"
ORDERS = {
    "K1": "K1;C1;offen;EUR;100.00;1;2026-11-02T09:00:00Z;2026-11-02T09:00:00Z",
    "K2": "K2;C2;offen;EUR;50.00;1;2026-11-02T09:00:00Z;2026-11-02T09:00:00Z",   # paid 45.00
    "K3": "K3;C3;offen;EUR;30.00;1;2026-11-02T08:00:00Z;2026-11-02T08:00:00Z",   # never paid, gone on night 2
    "K4": "K4;C4;offen;EUR;20.00;1;2026-11-03T09:00:00Z;2026-11-03T09:00:00Z",
}


def txn(txn_id: str, order: str, cents: int, when: str, status: str = "captured") -> str:
    return json.dumps({"txn_id": txn_id, "order_ref": order, "kind": "charge", "status": status,
                       "currency": "eur", "amount_cents": cents, "created": when})


PAYMENTS = {
    D1: [txn("T1", "K1", 10000, "2026-11-02T10:00:00Z"), txn("T2", "K2", 4500, "2026-11-02T10:00:00Z"),
         txn("T8", "K1", 10000, "2026-11-02T10:05:00Z", "declined"),
         txn("T9", "K99", 1200, "2026-11-02T10:00:00Z")],                      # an order the till never had
    D2: [txn("T4", "K4", 2000, "2026-11-03T10:00:00Z")],
}
EXPECTED = {
    D1: {("K2", "amount_mismatch", "acquirer")},
    # K3 is deleted from the till's full export of night 2, so it is no missing_payment; the orphan is due
    D2: {("K2", "amount_mismatch", "acquirer"), ("K99", "orphan_record", "acquirer")},
}


def deliver(root: Path, night: date) -> None:
    """The night's files, with the modification time of their delivery (22:00 UTC)."""
    stamp = datetime(night.year, night.month, night.day, 22, tzinfo=UTC).timestamp()
    till = root / "exports" / "kasse" / "bestellungen" / "bestellungen.csv"
    till.parent.mkdir(parents=True, exist_ok=True)
    keys = ["K1", "K2", "K3"] if night == D1 else ["K1", "K2", "K4"]
    till.write_text(ORDERS_HEADER + "\n" + "".join(ORDERS[k] + "\n" for k in keys))
    os.utime(till, (stamp, stamp))
    day_file = root / "exports" / "acquirer" / "txns" / f"{night}.jsonl"
    day_file.parent.mkdir(parents=True, exist_ok=True)
    day_file.write_text("".join(line + "\n" for line in PAYMENTS[night]))
    os.utime(day_file, (stamp, stamp))
    if night == D2:  # night 1's file delivered again, unchanged
        first = day_file.with_name(f"{D1}.jsonl")
        os.utime(first, (stamp, stamp))


def recon(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECON_", "DAGSTER_HOME"))}
    proc = subprocess.run([str(RECON), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, f"recon {' '.join(args)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_adding_a_source_system_as_the_readme_says(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    home.mkdir()
    deliver(home, D1)  # 1. drop the exports in a folder, one sub-folder per stream

    # 2. let recon init write a first config; fill in what it left as TODO, declare the full export
    made = recon(home, "init", "--out", "my.yaml", "--system", "kasse:orders:./exports/kasse",
                 "--system", "acquirer:payments:./exports/acquirer", ok=False)
    assert "TODO" in (home / "my.yaml").read_text(), made.stdout
    text = (home / "my.yaml").read_text()
    assert "status: {from: State, values: {}}" in text and "values: {captured: " not in text
    text = text.replace("status: {from: State, values: {}}", "status: {from: State, values: {offen: placed}}")
    text = text.replace("status: {from: status, values: {}}",
                        "status: {from: status, values: {captured: succeeded, declined: failed}}")
    text = re.sub(r"# updated_at: TODO[^\n]*", "updated_at: {from: created, type: timestamp}", text, count=1)
    # the till overwrites one file with a full export every night
    head, _, tail = text.partition("      bestellungen:")
    tail = tail.replace("sync_mode: append", "sync_mode: snapshot", 1)
    (home / "my.yaml").write_text(head + "      bestellungen:" + tail)

    # 3. validate; 4. preview the data as of the first day
    checked = recon(home, "--config", "my.yaml", "config", "validate")
    assert "my.yaml: ok" in checked.stdout and "bestellungen: required order_id" in checked.stdout
    preview = recon(home, "--config", "my.yaml", "config", "validate", "--data", "--date", str(D1))
    assert "0 would stop the run, 0 with warnings" in preview.stdout, preview.stdout

    # 5. run night after night
    for night in (D1, D2):
        if night == D2:
            deliver(home, D2)
        ran = recon(home, "--config", "my.yaml", "run", "--date", str(night))
        if night == D1:
            assert "generated contract suite for kasse.bestellungen" in ran.stdout + ran.stderr
        out = recon(home, "--config", "my.yaml", "sql",
                    f"select order_id, diff_type, system from marts.fct_order_diffs where as_of_date = '{night}' "
                    "order by all", "--json")
        rows = {(r["order_id"], r["diff_type"], r["system"]) for r in json.loads(out.stdout)}
        assert rows == EXPECTED[night], (night, ran.stdout[-3000:])
    states = recon(home, "--config", "my.yaml", "sql", "select order_id, state from marts.fct_orders order by 1",
                   "--json")
    assert {r["order_id"]: r["state"] for r in json.loads(states.stdout)} == {
        "K1": "RECONCILED", "K2": "PAID", "K4": "RECONCILED", "K99": "ON_HOLD"}
