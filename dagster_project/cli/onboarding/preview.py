"""``recon config validate --data``: what each stream would give as of D, before the first real run.

The preview runs the real parts on a scratch copy, never a second implementation of them:
1. every stream is landed by its own connector into a scratch DuckDB file (``airbyte_api`` streams are
   skipped: landing them would trigger a sync of the user's Airbyte connection);
2. its contract suite runs on the scratch table (generated into a scratch folder, with the config's
   ``overrides.yml``), so blocking problems show as they would in the run;
3. dbt builds the generated staging models (``stage_stream``, the mapping the nightly uses) on the
   scratch database, over every landed row (quarantined ones included, so that a bad value shows up
   as what staging makes of it);
4. the figures are read from the staged rows: rows staged, rows visible as of D (dbt's own
   ``visible_versions`` macro of the record-version model, compiled by dbt), coded values outside the canonical words
   (``ROLE_VALUES``), and values staging could not parse (the staged field is null where the raw value
   is not), with the first examples.

Nothing of the project's database, state folder or suites is touched: everything lives in a temporary
folder that is deleted afterwards.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.config.model import ReconConfig, WarehouseConfig
from dagster_project.contracts.rules import lit, q
from dagster_project.contracts.rules import text_sql as raw_text_sql
from dagster_project.dbt.dbt_in_process import DbtOutcome, environment
from ingestion.catalogue import NESTED_RECORD_FIELDS, ROLE_FIELDS, ROLE_VALUES

EXAMPLES = 3
# get_dbt_project / set_dbt_env point these at the config they prepare: the caller's come back afterwards.
_DBT_ENV = ("RECON_DUCKDB_PATH", "DBT_TARGET_PATH", "RECON_DBT_TARGET")


@dataclass
class FieldFinding:
    """Rows of one stream whose field staging could not use: unmapped words or unparseable values."""

    field: str
    kind: str  # "unmapped" or "unparseable"
    rows: int
    examples: list[str]

    def render(self, values_hint: str) -> str:
        shown = ", ".join(self.examples)
        if self.kind == "unmapped":
            return (f"{self.field}: {self.rows} row(s) with values outside {values_hint}: {shown} "
                    f"(map them in fields.{self.field}.values)")
        return f"{self.field}: {self.rows} row(s) staging could not parse, e.g. {shown}"


@dataclass
class StreamPreview:
    """What one stream would give as of D."""

    system: str
    stream: str
    role: str
    landed: int | None = None
    files: int | None = None
    staged: int | None = None
    visible: int | None = None
    quarantined: int = 0
    ranges: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    contract: list[str] = field(default_factory=list)
    contract_blocking: bool = False
    findings: list[FieldFinding] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def blocking(self) -> bool:
        """True when the nightly run would stop on this stream."""
        return self.error is not None or self.contract_blocking

    @property
    def warnings(self) -> list[str]:
        """Findings that do not stop a run but make its results wrong or empty."""
        out = [f.render(_vocabulary(self.role, f.field)) for f in self.findings]
        if self.landed and self.visible == 0:
            out.insert(0, f"none of the {self.landed} landed row(s) is visible as of D (see the ranges above)")
        return out


@dataclass
class Preview:
    """The preview of every stream of a config as of one day."""

    as_of: dt.date
    streams: list[StreamPreview]

    @property
    def blocking(self) -> bool:
        return any(s.blocking for s in self.streams)

    def render(self) -> str:
        """The report printed by ``recon config validate --data``."""
        lines = [f"preview as of {self.as_of} (landed into a scratch database; nothing of yours was written):"]
        for s in self.streams:
            head = f"  {s.system}.{s.stream} ({s.role})"
            if s.skipped:
                lines.append(f"{head}: not previewed: {s.skipped}")
                continue
            if s.landed is None:
                lines.append(f"{head}: FAILED: {s.error}")
                continue
            counts = [f"{s.landed} row(s) landed" + (f" from {s.files} file(s)" if s.files is not None else "")]
            if s.staged is not None:
                counts.append(f"{s.visible if s.visible is not None else '?'} visible as of {self.as_of}")
            if s.quarantined:
                counts.append(f"{s.quarantined} would be quarantined by the contract")
            lines.append(f"{head}: " + ", ".join(counts))
            for name, (low, high) in s.ranges.items():
                lines.append(f"      {name}: {low or '-'} .. {high or '-'}")
            if s.contract:
                lines.append(f"      contract: {'FAIL (blocking)' if s.contract_blocking else 'warnings'}")
                lines += [f"        - {m}" for m in s.contract[:8]]
                if len(s.contract) > 8:
                    lines.append(f"        ... {len(s.contract) - 8} more (recon contracts check)")
            if s.error:
                lines.append(f"      ERROR: {s.error}")
            lines += [f"      ! {w}" for w in s.warnings]
        blocking = sum(s.blocking for s in self.streams)
        warned = sum(bool(s.warnings) for s in self.streams)
        lines.append(f"{len(self.streams)} stream(s): {blocking} would stop the run, {warned} with warnings")
        return "\n".join(lines)


def _vocabulary(role: str, name: str) -> str:
    return "{" + ", ".join(ROLE_VALUES.get(role, {}).get(name, ())) + "}"


def preview_config(config: ReconConfig, as_of: dt.date, echo: Callable[[str], Any] = print) -> Preview:
    """Land, check and stage every stream of ``config`` on a scratch copy and describe the result.

    Args:
        config: the validated config.
        as_of: the as-of day D of the preview.
        echo: where progress lines go.

    Returns:
        The per-stream preview (``render()`` for the report, ``blocking`` for the verdict).
    """
    with tempfile.TemporaryDirectory(prefix="recon-preview-") as tmp, environment({}, restores=_DBT_ENV):
        scratch = _scratch_config(config, Path(tmp))
        streams = [StreamPreview(name, stream, system.role)
                   for name, system in sorted(config.systems.items()) for stream in sorted(system.streams)]
        con = duckdb.connect(str(scratch.duckdb_path))
        try:
            echo("  landing every stream into a scratch database ...")
            _land(con, scratch, streams)
            echo("  running the contract suites ...")
            _contracts(con, scratch, as_of, streams)
        finally:
            con.close()
        echo("  building the staging models with dbt ...")
        failed = _stage(scratch, as_of, [s for s in streams if s.landed is not None], Path(tmp))
        con = duckdb.connect(str(scratch.duckdb_path), read_only=True)
        try:
            for s in streams:
                if s.landed is None:
                    continue
                if (s.system, s.stream) in failed:
                    s.error = failed[(s.system, s.stream)]
                    continue
                _describe(con, scratch, s)
        finally:
            con.close()
        staged = [s for s in streams if s.staged is not None]
        try:
            visible = _visible_counts(scratch, as_of, staged, Path(tmp))
        except RuntimeError as exc:  # said, never a silent "0 visible"
            visible = {}
            for s in staged:
                s.error = str(exc)
        for s in streams:
            s.visible = visible.get((s.system, s.stream), s.visible)
    return Preview(as_of, streams)


def _scratch_config(config: ReconConfig, tmp: Path) -> ReconConfig:
    from dagster_project.contracts.suites import OVERRIDES_FILE, expectations_dir_for

    suites = tmp / "expectations"
    suites.mkdir()
    overrides = expectations_dir_for(config) / OVERRIDES_FILE
    if overrides.is_file():
        shutil.copyfile(overrides, suites / OVERRIDES_FILE)
    project = config.project.model_copy(update={
        "duckdb_path": str(tmp / config.duckdb_path.name), "state_dir": str(tmp / "state"),
        "expectations_dir": str(suites)})
    # The preview stages a sample in a scratch DuckDB file whatever the config's engine: it never
    # writes the team's warehouse.
    scratch = config.model_copy(update={"project": project, "warehouse": WarehouseConfig()})
    scratch.source_file = config.source_file
    return scratch


def _land(con: duckdb.DuckDBPyConnection, config: ReconConfig, streams: list[StreamPreview]) -> None:
    from ingestion.connectors import stream_for
    from ingestion.sync import sync_stream

    for s in streams:
        system = config.systems[s.system]
        if system.connector == "airbyte_api":
            s.skipped = "an airbyte_api stream would trigger a sync of the Airbyte connection"
            continue
        try:
            result = sync_stream(con, stream_for(s.system, system, s.stream))
        except Exception as exc:  # noqa: BLE001 - reported per stream; the others still preview
            s.error = f"landing failed: {exc}"
            continue
        s.landed = con.execute(f"select count(*) from {q('raw_' + s.system)}.{q(s.stream)}").fetchall()[0][0] \
            if _exists(con, f"raw_{s.system}", s.stream) else 0
        s.files = result.files_landed if system.connector == "file_drop" else None
        if result.errors:
            s.contract.extend(f"landing: {e}" for e in result.errors[:EXAMPLES])
        if result.records_quarantined:
            s.contract.append(f"landing: {result.records_quarantined} record(s) could not be read (malformed)")


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [schema, table]).fetchall()[0][0] > 0


def _contracts(con: duckdb.DuckDBPyConnection, config: ReconConfig, as_of: dt.date,
               streams: list[StreamPreview]) -> None:
    from dagster_project.contracts.runner import validate_stream
    from dagster_project.contracts.store import SCHEMA

    for s in streams:
        if s.landed is None:
            continue
        result = validate_stream(con, config, s.system, s.stream, as_of_date=as_of, record=True)
        s.contract.extend(m for m in result.messages() if not m.endswith("[freshness]"))
        s.contract_blocking = result.blocking
        if result.hint():
            s.contract.append(f"to fix: {result.hint()}")
        s.quarantined = result.quarantined_rows
    # Stage every landed row: a value staging cannot parse must show as such, not vanish in the quarantine.
    con.execute(f"drop view if exists {SCHEMA}.contract_quarantined_ids")


def _dbt(config: ReconConfig, args: list[str], as_of: dt.date, target: Path, *,
         adds_a_node: bool = False) -> DbtOutcome:
    """One dbt command on this (scratch) config's project, in this process, as the nightly runs dbt.

    ``adds_a_node``: the command adds a node to the manifest it is given (``compile --inline``): it gets a
    copy, so the kept manifest stays the project's.
    """
    from dagster_project.dbt.dbt_in_process import invoke, parsed_manifest
    from dagster_project.dbt.dbt_project import AS_OF_DATE_ENV, get_dbt_project, set_dbt_env

    project = get_dbt_project(config)  # this config's project, prepared (and parsed) in this process
    project_dir = Path(project.project_dir)
    set_dbt_env(config)  # its database and target (the caller's values come back afterwards)
    vars_json = json.dumps(config.dbt_vars(), sort_keys=True)
    manifest = parsed_manifest(project_dir, project_dir, Path(project.target_path), vars_json)
    return invoke(["--no-use-colors", *args, "--quiet", "--no-send-anonymous-usage-stats",
                   "--project-dir", str(project_dir), "--profiles-dir", str(project_dir), "--vars", vars_json,
                   "--target-path", str(target), "--log-path", str(target)],
                  manifest=copy.deepcopy(manifest) if adds_a_node else manifest,
                  env={AS_OF_DATE_ENV: as_of.isoformat()})  # the day, as the nightly passes it


def _stage(config: ReconConfig, as_of: dt.date, streams: list[StreamPreview], tmp: Path) -> dict[tuple[str, str], str]:
    """Build the staging models of the landed streams; returns the error of each one that failed."""
    from dagster_project.dbt.dbt_codegen import model_name

    if not streams:
        return {}
    target = tmp / "dbt-run"
    models = {model_name(s.system, s.stream): (s.system, s.stream) for s in streams}
    done = _dbt(config, ["run", "--select", *models], as_of, target)
    results_file = target / "run_results.json"
    if not results_file.is_file():
        message = done.stdout.strip().splitlines()
        return {key: "dbt could not run: " + " | ".join(message[-5:]) for key in models.values()}
    failed: dict[tuple[str, str], str] = {}
    for item in json.loads(results_file.read_text())["results"]:
        name = item["unique_id"].rsplit(".", 1)[-1]
        if name in models and item["status"] not in ("success", "pass"):
            failed[models[name]] = f"staging model {name} failed: {(item.get('message') or '').strip()[:600]}"
    for name, key in models.items():  # a model dbt did not even start (e.g. a compile error) failed too
        if key not in failed and not any(i["unique_id"].endswith("." + name)
                                         for i in json.loads(results_file.read_text())["results"]):
            failed[key] = f"staging model {name} did not build: " + " | ".join(
                (done.stdout + done.stderr).strip().splitlines()[-3:])
    return failed


def _describe(con: duckdb.DuckDBPyConnection, config: ReconConfig, s: StreamPreview) -> None:
    from dagster_project.dbt.dbt_codegen import model_name

    staged = f"staging.{q(model_name(s.system, s.stream))}"
    raw = f"{q('raw_' + s.system)}.{q(s.stream)}"
    stream = config.systems[s.system].streams[s.stream]
    s.staged = con.execute(f"select count(*) from {staged}").fetchall()[0][0]
    for column, label in (("updated_at", "updated_at"), ("available_at", "files modified (available_at)")):
        low, high = con.execute(f"select min({column}), max({column}) from {staged}").fetchall()[0]
        s.ranges[label] = (None if low is None else str(low), None if high is None else str(high))
    role_fields = ROLE_FIELDS[s.role]
    for name, spec in sorted(stream.fields.items()):
        if name in NESTED_RECORD_FIELDS:
            continue  # staged as rows of their own (refunds, credit notes), not as a column
        words = ROLE_VALUES.get(s.role, {}).get(name)
        if words and (spec.from_ or spec.value):
            rows = con.execute(
                f"select {q(name)}, count(*) from {staged} where {q(name)} is not null and {q(name)} not in "
                f"({', '.join(lit(w) for w in words)}) group by 1 order by 2 desc, 1").fetchall()
            if rows:
                s.findings.append(FieldFinding(name, "unmapped", sum(n for _, n in rows),
                                               [f"'{v}' ({n})" for v, n in rows[:EXAMPLES]]))
        kind = spec.type or role_fields[name][0]
        if spec.from_ and kind in ("timestamp", "decimal", "integer", "boolean", "json_array_length"):
            value = raw_text_sql(spec.from_, "r")
            bad = (f"from {raw} r join {staged} s on s._airbyte_raw_id = cast(r._airbyte_raw_id as varchar) "
                   f"where s.{q(name)} is null and {value} is not null")
            count = con.execute(f"select count(*) {bad}").fetchall()[0][0]
            if count:
                key = " || '|' || ".join(f"coalesce({raw_text_sql(k, 'r')}, '')" for k in stream.primary_key)
                examples = con.execute(f"select {key}, {value} {bad} order by 1 limit {EXAMPLES}").fetchall()
                s.findings.append(FieldFinding(
                    name, "unparseable", count,
                    [f"{'+'.join(stream.primary_key)}={k} {spec.from_}={v!r}" for k, v in examples]))


def _visible_counts(config: ReconConfig, as_of: dt.date, streams: list[StreamPreview],
                    tmp: Path) -> dict[tuple[str, str], int]:
    """Rows of each staged stream visible as of D, by dbt's own ``visible_versions`` (compiled by dbt): known
    and updated before the end of D, and in a snapshot stream part of the snapshot in force."""
    from dagster_project.dbt.dbt_codegen import model_name

    if not streams:
        return {}
    parts = [f"select {lit(s.system)} as system_name, {lit(s.stream)} as stream_name, count(*) as visible "
             f"from ({{{{ visible_versions(ref({lit(model_name(s.system, s.stream))}), []) }}}}) as visible_rows"
             for s in streams]
    target = tmp / "dbt-compile"
    done = _dbt(config, ["compile", "--inline", " union all ".join(parts)], as_of, target, adds_a_node=True)
    results_file = target / "run_results.json"
    compiled = None
    if done.returncode == 0 and results_file.is_file():
        compiled = json.loads(results_file.read_text())["results"][0].get("compiled_code")
    if not compiled:
        tail = " | ".join(done.stdout.strip().splitlines()[-3:])
        raise RuntimeError(f"rows visible as of D could not be counted (dbt compile of visible_versions): {tail}")
    con = duckdb.connect(str(config.duckdb_path), read_only=True)
    try:
        return {(a, b): int(n or 0) for a, b, n in con.execute(compiled).fetchall()}
    finally:
        con.close()
