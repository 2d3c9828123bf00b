"""Time the read commands as a user runs them from the shell, on a database the nightly built.

    .venv/bin/python bench/bench_read_paths.py --home /tmp/bn10m/home --data /tmp/bn10m/drop [--repeat 15]

``--home`` is the RECON_HOME of a work dir `bench/bench_nightly.py` played (its nights built the
warehouse, the exception store and the Dagster instance there; ``--data`` is that work dir's ``drop``
folder); any other home works with ``--config`` naming its config. Each command runs as a new `recon`
process (the interpreter's start, the imports, the config load and the query: what a person at a shell
waits for), ``--repeat`` times, on different orders and exceptions where the command takes one:

- `recon order ID`: orders picked at random, half of them with an exception (a long timeline);
- `recon exceptions list` (the default view: open and acknowledged, the first 50) and
  `recon exceptions list --type amount_mismatch --overdue`;
- `recon exceptions show ID`;
- `recon sql`: a point query on one order and a count by state over every order.

Every run must exit 0 and print something; a failure stops the benchmark with its output. Prints the
median, p95 and max wall time of each command, the database's size (orders, diff rows, exceptions) and
one JSON line. Targets (issue 14): each ≤ 0.5 s at 10M orders. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

RECON = Path(sys.executable).with_name("recon")


def _sample(con: duckdb.DuckDBPyConnection, sql: str, n: int, rng: random.Random) -> list[str]:
    rows = [r[0] for r in con.execute(sql).fetchall()]
    if not rows:
        raise SystemExit(f"the database holds nothing for: {sql}")
    return [rng.choice(rows) for _ in range(n)]


def commands(db: Path, repeat: int, seed: int) -> tuple[dict[str, list[list[str]]], dict[str, int]]:
    """Each benchmarked command's argument lists (one per repeat), and the database's size."""
    rng = random.Random(seed)
    con = duckdb.connect(str(db), read_only=True)
    try:
        size = {name: con.execute(f"select count(*) from {table}").fetchall()[0][0] for name, table in
                (("orders", "marts.fct_orders"), ("diff_rows", "marts.fct_order_diffs"),
                 ("exceptions", "recon.exceptions"))}
        # A reservoir of a few thousand ids is plenty for random picks, and keeps this quick at 10M.
        with_exception = _sample(con, "select order_id from recon.exceptions using sample 5000 rows", repeat, rng)
        any_order = _sample(con, "select order_id from marts.fct_orders using sample 5000 rows", repeat, rng)
        exception_ids = _sample(con, "select exception_id from recon.exceptions using sample 5000 rows", repeat, rng)
    finally:
        con.close()
    orders = [with_exception[i] if i % 2 == 0 else any_order[i] for i in range(repeat)]
    return {
        "recon order ID": [["order", o] for o in orders],
        "recon exceptions list": [["exceptions", "list"]] * repeat,
        "recon exceptions list --type --overdue": [["exceptions", "list", "--type", "amount_mismatch",
                                                    "--overdue"]] * repeat,
        "recon exceptions show ID": [["exceptions", "show", e] for e in exception_ids],
        "recon sql (one order)": [["sql", f"select * from marts.fct_orders where order_id = '{o}'"] for o in orders],
        "recon sql (count by state)": [["sql", "select state, count(*) from marts.fct_orders group by all "
                                               "order by 2 desc"]] * repeat,
    }, size


def time_command(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one `recon ...` process; exits with its output if it failed or printed nothing."""
    start = time.perf_counter()
    done = subprocess.run([str(RECON), *argv], env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"`recon {' '.join(argv)}` exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="RECON_HOME of a played work dir")
    parser.add_argument("--data", type=Path, help="RECON_DEMO_DATA of that work dir (its drop folder)")
    parser.add_argument("--config", type=Path, help="the config (default: the demo config, as the benchmark's)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_CONFIG", "DAGSTER_HOME", "RECON_AS_OF_DATE")}
    env["RECON_HOME"] = str(args.home)
    if args.data:
        env["RECON_DEMO_DATA"] = str(args.data)
    if args.config:
        env["RECON_CONFIG"] = str(args.config)
    db = args.home / "warehouse.duckdb"
    if not db.exists():
        raise SystemExit(f"no warehouse at {db}: play a work dir with bench/bench_nightly.py first")
    plan, size = commands(db, args.repeat, args.seed)
    print(f"{size['orders']:,} orders, {size['diff_rows']:,} diff rows (all as-of days), "
          f"{size['exceptions']:,} exceptions; {args.repeat} runs of each command, each a new process")
    print(f"{'command':42} {'median':>8} {'p95':>8} {'max':>8}")
    results = {}
    for name, runs in plan.items():
        times = sorted(time_command(argv, env) for argv in runs)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        results[name] = {"median_s": round(statistics.median(times), 3), "p95_s": round(p95, 3),
                         "max_s": round(times[-1], 3)}
        print(f"{name:42} {results[name]['median_s']:8.3f} {p95:8.3f} {times[-1]:8.3f}")
    print(json.dumps({"size": size, "repeat": args.repeat, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
