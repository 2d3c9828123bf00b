"""Time one stream's contract validation, this tree against an older commit, in the same run.

    .venv/bin/python bench/bench_contracts.py [--rows 5000 1000000] [--old-ref a57923f] [--repeat 3]

For each size, writes one day's ``psp/charges`` export (JSONL, the demo config's shape, 0.1 % of rows
broken in five ways), lands it with the file-drop connector into a temporary DuckDB file (timed: the
landing the contract is compared with), then validates ``raw_psp.charges`` with recording on
(``validate_stream(..., record=True)``: the checks, the quarantine, the violations and the snapshot),
``--repeat`` times after one warm-up run, first with this tree's code (one SQL query per stream),
then with the code of ``--old-ref`` (a detached git worktree, run in a subprocess with the same
virtualenv on the same file: the Great Expectations run of before). Both must find the same failed
rules with the same counts and quarantine the same rows, or the bench exits 1. Prints the median
seconds per stream; the GX import (paid once per process by the old code) is reported apart.
The numbers are written down in docs/performance.md ("Contracts as one query").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
REPO = Path(__file__).resolve().parents[1]

# Run in both trees (the old one through a subprocess): validate `repeat` times, print one JSON line.
TIMED = r"""
import datetime as dt, json, sys, time
from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.contracts.runner import validate_stream
try:
    from dagster_project.lib.database import connect
except ImportError:  # an older tree
    from dagster_project.resources.duckdb_resource import connect

gx_dir, repeat, now = sys.argv[1], int(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3])
started = time.perf_counter()
if __import__("pathlib").Path("dagster_project/contracts/gx_duckdb.py").is_file():  # the GX runner
    import great_expectations  # noqa: F401  (paid once per process: timed apart, not per stream)
gx_import = time.perf_counter() - started
config = load_config(DEMO_CONFIG_PATH)
con = connect(config.duckdb_path)
times = []
for i in range(repeat + 1):
    t0 = time.perf_counter()
    result = validate_stream(con, config, "psp", "charges", as_of_date=now.date(), now=now,
                             expectations_dir=__import__("pathlib").Path(gx_dir), record=True)
    if i:
        times.append(time.perf_counter() - t0)
quarantined = con.execute("select rule_id, count(*) from recon_meta.contract_quarantine group by all "
                          "order by all").fetchall()
con.close()
print("RESULT " + json.dumps({
    "times": times, "gx_import": gx_import, "errors": [o.rule_id for o in result.outcomes if o.error],
    "failed": sorted((o.rule_id, o.unexpected_count) for o in result.failures),
    "quarantined": quarantined, "expectations": len(result.outcomes)}))
"""


def build(data: Path, rows: int, bad_rate: float, now: dt.datetime) -> Path:
    """Write one day's charges export (JSONL, the demo's psp.charges shape) of ``rows`` rows."""
    import duckdb

    every = max(int(1 / bad_rate), 2) if bad_rate > 0 else 0
    base = int((now - dt.timedelta(days=1)).timestamp())
    bad = f"(i % {every} = 0)" if every else "false"
    path = data / "psp" / "charges" / f"{now.date()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"""
        copy (select
            case when {bad} and i % 7 = 0 then null else 'ch_' || i end as id,
            'charge' as object,
            case when {bad} and i % 7 = 1 then -100 else 100 + i % 100000 end::bigint as amount,
            case when {bad} and i % 7 = 2 then 'xx1' else 'eur' end as currency,
            case when {bad} and i % 7 = 3 then 'booked' else 'succeeded' end as status,
            'cus_' || (i % 50000) as customer,
            {{'order_id': 'o' || i}} as metadata,
            ({base} + i % 80000)::bigint as created,
            case when {bad} and i % 7 = 4 then {base} + 10 * 86400 else {base} + i % 80000 end::bigint as updated
        from range({rows}) t(i)) to '{path}' (format json)
    """)
    con.close()
    modified = (now - dt.timedelta(hours=2)).timestamp()
    os.utime(path, (modified, modified))
    return path


def land(config) -> float:
    """Land the export with the file-drop connector, as the nightly does; returns the seconds."""
    from dagster_project.defs.ingestion.assets import file_drop_stream
    from dagster_project.lib.database import connect
    from ingestion.sync import sync_stream

    con = connect(config.duckdb_path)
    t0 = time.perf_counter()
    result = sync_stream(con, file_drop_stream("psp", config.systems["psp"], "charges"))
    took = time.perf_counter() - t0
    con.close()
    if result.status != "succeeded":
        sys.exit(f"landing failed: {result.errors}")
    return took


def timed(tree: Path, env: dict[str, str], gx_dir: Path, repeat: int, now: dt.datetime) -> dict:
    out = subprocess.run([sys.executable, "-c", TIMED, str(gx_dir), str(repeat), now.isoformat()], cwd=tree,
                         env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode or line is None:
        sys.exit(f"the run in {tree} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 1_000_000])
    parser.add_argument("--bad-rate", type=float, default=0.001)
    parser.add_argument("--old-ref", default="a57923f", help="the commit to compare with (GX contracts)")
    parser.add_argument("--old-max-rows", type=int, default=1_000_000, help="compare with the old code up to this size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_contracts_"))
    old_tree = tmp / "old"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old_tree), args.old_ref],
                   check=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    failed = False
    old: dict = {}
    try:
        print(f"| rows | landing (file_drop, JSONL) | contracts, new (one query) | new / landing | "
              f"old ({args.old_ref}: GX) | old / new |")
        print("|---|---|---|---|---|---|")
        for rows in args.rows:
            home, data = tmp / f"home-{rows}", tmp / f"data-{rows}"
            env = {**os.environ, "RECON_HOME": str(home), "RECON_DEMO_DATA": str(data),
                   "GX_ANALYTICS_ENABLED": "false"}
            env.pop("RECON_CONFIG", None)
            os.environ.update({"RECON_HOME": env["RECON_HOME"], "RECON_DEMO_DATA": env["RECON_DEMO_DATA"]})
            from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
            from dagster_project.contracts.suites import generate_suites

            config = load_config(DEMO_CONFIG_PATH)
            gx_dir = tmp / f"expectations-{rows}"
            generate_suites(config, gx_dir, system="psp")
            build(data, rows, args.bad_rate, now)
            landing = land(config)
            new = timed(REPO, env, gx_dir, args.repeat, now)
            a = statistics.median(new["times"])
            line = f"| {rows:,} | {landing:.2f} s | {a:.3f} s | {a / landing:.0%} |"
            if rows <= args.old_max_rows:
                old = timed(old_tree, env, gx_dir, args.repeat, now)
                b = statistics.median(old["times"])
                line += f" {b:.3f} s | {b / a:.1f}x |"
                if (new["failed"], new["quarantined"]) != (old["failed"], old["quarantined"]):
                    failed = True
                    line += (f"\n    DIFFERENT results:\n    new {new['failed']} {new['quarantined']}\n"
                             f"    old {old['failed']} {old['quarantined']}")
            else:
                line += " - | - |"
            print(line, flush=True)
            for side, r in (("new", new), ("old", old)):
                if r.get("errors"):
                    print(f"    {side}: expectations that errored: {r['errors']}")
            print(f"    {new['expectations']} expectations, failed: {new['failed']}", flush=True)
        if old:
            print(f"GX import in the old code's process: {old['gx_import']:.1f} s (once per process, not in the "
                  "times above); the new runner does not import GX")
        print(f"median of {args.repeat} recorded validations after a warm-up; machine: {platform.platform()}, "
              f"{os.cpu_count()} CPUs, python {platform.python_version()}, {dt.date.today()}; "
              f"load average {os.getloadavg()[0]:.1f}")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)], check=False)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
