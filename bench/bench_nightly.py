"""Side-by-side nightly: the platform through Dagster against a hand-written DuckDB script, same files, same day.

Usage:
    .venv/bin/python bench/bench_nightly.py --orders 1000000 --days 30 --workdir /tmp/recon-nightly

Generates the five demo systems' exports (bench/gen_exports.py; reused when <workdir>/exports already
holds them), drops them into <workdir>/drop (hard links, mtimes kept) and plays three nights:

- first: the history's files (days 1..N) are dropped and the platform runs day N on a fresh database and
  Dagster instance, the first run on this config (what `recon run --date` does: landing, contracts, dbt,
  exceptions, notifications, report);
- next: one more day of new and changed records is dropped and day N+1 runs;
- nothing: day N+1 runs again with nothing new.

Each night, in its own subprocess so each peak RSS is its own, the platform runs the day
(`dagster_project.runs.runner.run_days` with the demo config, RECON_HOME and RECON_DEMO_DATA pointing into
the work dir), then bench/handwritten_nightly.py reads the same files for the same day. Both sides' diffs
(order_id, diff_type, system, amount_at_risk) must be equal: if they are not, the first 20 differences are
printed and the benchmark exits with status 1. Prints per-phase times from the Dagster run's event log
(STEP_START/STEP_SUCCESS of every step), the ratio platform/hand-written, the peak RSS of each side, a
readable table and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
SCENARIOS = ("first", "next", "nothing")


def peak_rss() -> dict[str, float]:
    """Peak RSS in MiB of this process (VmHWM) and of its largest finished child (dbt runs in one)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"self": round(own, 1), "children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


# ------------------------------------------------------------------------------------- platform side


def phase_of(step_key: str) -> str:
    """The phase a step of the nightly job belongs to."""
    if step_key.endswith("__contract_checks"):
        return "contracts"
    if step_key.startswith("raw__"):
        return "landing"
    return {"recon_dbt_models": "dbt", "recon_dbt_after_exceptions": "dbt", "exceptions": "exceptions", "exception_notifications": "notifications",
            "reconciliation_report": "report"}.get(step_key, step_key)


def step_times(instance: Any, run_id: str) -> dict[str, float]:
    """Seconds per step of a run, from its STEP_START / STEP_SUCCESS (or STEP_FAILURE) events."""
    starts: dict[str, float] = {}
    out: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not record.step_key:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            starts[record.step_key] = record.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and record.step_key in starts:
            out[record.step_key] = round(record.timestamp - starts[record.step_key], 3)
    return out


def platform_side(args: argparse.Namespace) -> int:
    """Run the platform's nightly for one day (this process is the subprocess) and report as JSON."""
    started = time.perf_counter()
    import dagster as dg

    from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
    from dagster_project.lib.database import connect
    from dagster_project.runs.runner import run_days

    config = load_config(DEMO_CONFIG_PATH)
    if os.environ.get("RECON_BENCH_ENGINE", "duckdb") != "duckdb":  # --engine: the dbt project elsewhere
        from dagster_project.config.model import WarehouseConfig

        config = config.model_copy(update={"warehouse": WarehouseConfig(engine=os.environ["RECON_BENCH_ENGINE"])})
    lines: list[str] = []
    results = run_days(config, [args.date], echo=lines.append)
    process_seconds = time.perf_counter() - started
    rss = peak_rss()
    result = results[-1]
    steps = step_times(dg.DagsterInstance.get(), result.run_id)
    con = connect(config.duckdb_path, read_only=True)
    try:
        path = str(args.out).replace("'", "''")
        con.execute(
            f"copy (select order_id, diff_type, system, amount_at_risk from marts.fct_order_diffs "
            f"where as_of_date = ? order by all) to '{path}' (format parquet)", [args.date])
        quarantined = con.execute("select count(*) from recon_meta.contract_quarantine").fetchall()[0][0]
        landing_quarantine = con.execute("select count(*) from recon_meta.quarantine").fetchall()[0][0]
        landed = con.execute("select coalesce(sum(records_landed), 0) from recon_meta.landed_files").fetchall()[0][0]
    finally:
        con.close()
    print(json.dumps({
        "success": result.success, "run_seconds": round(result.seconds, 3),
        "process_seconds": round(process_seconds, 3), "steps": steps, "peak_rss_mib": rss,
        "contract_quarantined": int(quarantined), "landing_quarantined": int(landing_quarantine),
        "rows_landed_total": int(landed), "log": lines,
    }))
    return 0 if result.success else 1


# ------------------------------------------------------------------------------------------ harness


def run_json(cmd: list[str], env: dict[str, str], log: Path) -> tuple[dict[str, Any], float, float]:
    """Run a side in its own process; its last stdout line is its JSON report.

    Returns:
        The report, the wall seconds, and the CPU seconds (user + system) of the process and every
        process it waited for (dbt's): steadier than the wall time on a shared machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as err:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not last:
        sys.stderr.write(proc.stdout[-4000:])
        raise SystemExit(f"FAILED: {' '.join(cmd[:3])} ... exited {proc.returncode}; see {log}")
    return json.loads(last[-1]), wall, cpu


def _empty_postgres(url: str) -> None:
    """Drop every schema of the benchmark's Postgres database but the system's (a first night starts empty)."""
    import psycopg

    if not url:
        raise SystemExit("--engine postgres needs $RECON_WAREHOUSE_URL (postgresql://user:password@host:5432/db)")
    with psycopg.connect(url, autocommit=True) as con:
        schemas = [r[0] for r in con.execute(
            "select nspname from pg_namespace where nspname not like 'pg\\_%' "
            "and nspname not in ('public', 'information_schema')")]
        for schema in schemas:
            con.execute(f'drop schema "{schema}" cascade')


def compare(platform_file: Path, script_file: Path) -> tuple[int, int, list[tuple]]:
    """(platform rows, script rows, differences) between the two sides' diffs."""
    import duckdb

    con = duckdb.connect()
    try:
        p = con.execute(f"select count(*) from read_parquet('{platform_file}')").fetchall()[0][0]
        s = con.execute(f"select count(*) from read_parquet('{script_file}')").fetchall()[0][0]
        differences = con.execute(f"""
            select coalesce(p.order_id, s.order_id) as order_id, coalesce(p.diff_type, s.diff_type) as diff_type,
                coalesce(p.system, s.system) as system, p.amount_at_risk as platform_amount,
                s.amount_at_risk as script_amount
            from read_parquet('{platform_file}') as p
            full join read_parquet('{script_file}') as s
                on p.order_id = s.order_id and p.diff_type = s.diff_type and p.system = s.system
            where p.order_id is null or s.order_id is null or p.amount_at_risk is distinct from s.amount_at_risk
            order by 1, 2, 3
        """).fetchall()
    finally:
        con.close()
    return int(p), int(s), differences


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 10, 1))
    p.add_argument("--workdir", type=Path, default=Path("/tmp/recon-nightly"))
    p.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all",
                   help="first runs on a fresh database; next and nothing continue the work dir's database")
    p.add_argument("--engine", choices=("duckdb", "postgres", "spark"), default="duckdb",
                   help="where the platform's dbt project runs; postgres: the database $RECON_WAREHOUSE_URL "
                        "names (its schemas are dropped before a first night); spark: a local Spark session "
                        "(the spark extra; its warehouse in the work dir, new for a first night)")
    p.add_argument("--side", choices=("platform",), help=argparse.SUPPRESS)
    p.add_argument("--date", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side == "platform":
        sys.path.insert(0, str(ROOT))
        return platform_side(args)

    sys.path.insert(0, str(BENCH))
    import duckdb
    from bench_dbt import drop_files  # hard links of the files up to a day, mtimes kept
    from gen_exports import META_FILE, generate, next_day

    work = args.workdir.resolve()
    exports, drop, home = work / "exports", work / "drop", work / "home"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bench.log"
    history_last = args.start + dt.timedelta(days=args.days - 1)
    next_date = history_last + dt.timedelta(days=1)
    meta_path = exports / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    wanted = {"orders": args.orders, "days": args.days, "seed": args.seed, "start": args.start.isoformat()}
    generation: dict[str, Any] = {}
    if {k: meta.get(k) for k in wanted} != wanted or not set(range(args.days)) <= set(meta.get("days_written", [])):
        shutil.rmtree(exports, ignore_errors=True)
        shutil.rmtree(drop, ignore_errors=True)
        generation["history"] = generate(exports, args.orders, args.days, args.seed, args.start)["seconds"]
        meta = json.loads(meta_path.read_text())
    if args.days not in meta["days_written"]:
        generation["next_day"] = next_day(exports)["seconds"]
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]

    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "RECON_CONFIG")}
    env.update({"RECON_HOME": str(home), "RECON_DEMO_DATA": str(drop), "RECON_START_DATE": args.start.isoformat(),
                "RECON_BENCH_ENGINE": args.engine})
    py = sys.executable
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        if scenario == "first":
            if args.engine == "postgres":
                _empty_postgres(os.environ.get("RECON_WAREHOUSE_URL", ""))
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(drop, ignore_errors=True)
            drop.mkdir(parents=True)
            drop_files(exports, drop, history_last)
            day = history_last
        else:
            if not (home / "warehouse.duckdb").exists():
                raise SystemExit(f"--scenario {scenario} needs the database of a first night in {home}")
            drop_files(exports, drop, next_date)
            day = next_date
        print(f"{scenario}: as of {day} ...", flush=True)
        plat, plat_wall, plat_cpu = run_json(
            [py, str(Path(__file__).resolve()), "--side", "platform", "--date", day.isoformat(),
             "--out", str(work / f"platform-{scenario}.parquet")], env, log)
        script, script_wall, script_cpu = run_json(
            [py, str(BENCH / "handwritten_nightly.py"), "--data", str(drop), "--date", day.isoformat(),
             "--out", str(work / f"script-{scenario}.parquet")], env, log)
        n_platform, n_script, differences = compare(work / f"platform-{scenario}.parquet",
                                                    work / f"script-{scenario}.parquet")
        phases: dict[str, float] = {}
        for step, seconds in plat["steps"].items():
            phases[phase_of(step)] = round(phases.get(phase_of(step), 0) + seconds, 3)
        row = {
            "scenario": scenario, "engine": args.engine, "as_of_date": day.isoformat(),
            "platform_seconds": round(plat_wall, 2), "platform_run_seconds": plat["run_seconds"],
            "script_seconds": round(script_wall, 2), "script_sql_seconds": script["seconds"],
            "ratio": round(plat_wall / script_wall, 2),
            "ratio_run_vs_sql": round(plat["run_seconds"] / script["seconds"], 2),
            "platform_cpu_seconds": round(plat_cpu, 1), "script_cpu_seconds": round(script_cpu, 1),
            "ratio_cpu": round(plat_cpu / script_cpu, 2),
            "phases": phases,
            "landing_per_stream": {k.removeprefix("raw__"): v for k, v in plat["steps"].items()
                                   if phase_of(k) == "landing"},
            "contracts_per_stream": {k.removesuffix("__contract_checks"): v
                                     for k, v in plat["steps"].items() if phase_of(k) == "contracts"},
            "platform_peak_rss_mib": plat["peak_rss_mib"], "script_peak_rss_mib": script["peak_rss_mib"],
            "diffs_platform": n_platform, "diffs_script": n_script, "by_type": script["by_type"],
            "differences": len(differences), "contract_quarantined": plat["contract_quarantined"],
            "landing_quarantined": plat["landing_quarantined"],
        }
        rows.append(row)
        print(f"  platform {plat_wall:.1f}s (run {plat['run_seconds']:.1f}s, cpu {plat_cpu:.0f}s)  script "
              f"{script_wall:.1f}s (cpu {script_cpu:.0f}s)  ratio {row['ratio']} (cpu {row['ratio_cpu']})  "
              f"diffs {n_platform:,} / {n_script:,}", flush=True)
        if differences or plat["contract_quarantined"] or plat["landing_quarantined"]:
            print(f"\nFAILED: the platform and the hand-written script disagree as of {day} ({scenario}): "
                  f"{len(differences)} differences; platform {n_platform} diffs, script {n_script}; "
                  f"quarantined by contracts {plat['contract_quarantined']}, by landing {plat['landing_quarantined']}")
            print("order_id, diff_type, system, platform amount_at_risk, script amount_at_risk")
            for d in differences[:20]:
                print("  ", d)
            print(json.dumps({"error": "disagree", "rows": rows}, default=str))
            return 1

    machine = {"nproc": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__,
               "platform": platform.platform()}
    with contextlib.suppress(ValueError, OSError):
        machine["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    print()
    print(f"{args.orders:,} orders x {args.days} days, 5 systems ({', '.join(f'{k} {v}s' for k, v in generation.items()) or 'exports reused'})")
    header = f"{'night':<8} {'platform':>9} {'run':>8} {'script':>8} {'ratio':>6} {'cpu×':>5}  {'landing':>8} {'contracts':>9} {'dbt':>7} {'exceptions':>10} {'notif.':>7} {'report':>7}  {'RSS plat/dbt/script MiB':>24}"
    print(header)
    for r in rows:
        ph = r["phases"]
        rss = r["platform_peak_rss_mib"]
        print(f"{r['scenario']:<8} {r['platform_seconds']:>8.1f}s {r['platform_run_seconds']:>7.1f}s "
              f"{r['script_seconds']:>7.1f}s {r['ratio']:>6.2f} {r['ratio_cpu']:>5.2f}  {ph.get('landing', 0):>7.1f}s "
              f"{ph.get('contracts', 0):>8.1f}s {ph.get('dbt', 0):>6.1f}s {ph.get('exceptions', 0):>9.1f}s "
              f"{ph.get('notifications', 0):>6.1f}s {ph.get('report', 0):>6.1f}s  "
              f"{rss['self']:>8.0f}/{rss['children']:.0f}/{r['script_peak_rss_mib']:.0f}")
    print("both sides found the same diffs in every night")
    print(json.dumps({"bench": "nightly", "orders": args.orders, "days": args.days, "seed": args.seed,
                      "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine,
                      "generation_seconds": generation, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
