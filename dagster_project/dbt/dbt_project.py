"""The one cached factory for the dbt project.

The manifest depends on the config (the staging models and sources are generated from it, and the
config reaches dbt as ``--vars``), so each config gets its own dbt project folder under its state
dir (links to the committed ``dbt_project/`` plus the generated staging), and the factory re-parses
whenever the config or the dbt project's files changed (a fingerprint of both), in this process. Under
``dagster dev`` a code reload is a new process, which checks the fingerprint again (dagster-dbt's
``prepare_if_dev`` would also re-parse, in a subprocess, on every reload: not used). Nothing here runs at
import time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.dagster_dbt_translator import validate_opt_translator
from dagster_dbt.dbt_manifest import validate_manifest
from packaging import version

from dagster_project.config.model import ReconConfig
from dagster_project.dbt.dbt_codegen import lay_out_project
from dagster_project.dbt.dbt_in_process import InProcessDbt, parse_project, parsed_manifest
from dagster_project.lib.errors import PlainError, without_traceback
from dagster_project.resources.run_lock import held_for_run
from dagster_project.warehouse import dbt_env as engine_dbt_env

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DUCKDB_PATH_ENV = "RECON_DUCKDB_PATH"
DUCKDB_MEMORY_LIMIT_ENV = "RECON_DUCKDB_MEMORY_LIMIT"  # profiles.yml: the DuckDB target's memory_limit
AS_OF_DATE_ENV = "RECON_AS_OF_DATE"
_HASHED_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}


def dbt_target_dir(config: ReconConfig) -> Path:
    """Where dbt writes its artifacts for this config (kept out of the source tree)."""
    return config.state_dir / "dbt" / "target"


def _fingerprint(vars_json: str) -> str:
    # The config and every dbt file: the prepared manifest is re-parsed when it changes.
    digest = hashlib.sha256(vars_json.encode())
    for path in sorted(DBT_PROJECT_DIR.rglob("*")):
        if path.suffix in _HASHED_SUFFIXES and path.is_file() and "target" not in path.parts:
            digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def set_dbt_env(config: ReconConfig) -> None:
    """Point dbt at this config: its DuckDB file (profiles.yml reads the env var) and its target dir.

    dagster-dbt gives every invocation its own folder under $DBT_TARGET_PATH and copies
    ``partial_parse.msgpack`` from there; pointing it at the prepared target keeps nightly runs on
    dbt's partial parse (seconds) instead of a full parse.
    """
    os.environ[DUCKDB_PATH_ENV] = str(config.duckdb_path)
    os.environ[DUCKDB_MEMORY_LIMIT_ENV] = config.project.duckdb_memory_limit
    os.environ.update(engine_dbt_env(config))
    target = dbt_target_dir(config)
    os.environ["DBT_TARGET_PATH"] = str(target)
    _dbt_on_path()
    _prune_invocation_dirs(target)


def _prune_invocation_dirs(target: Path, keep: int = 30) -> None:
    # Each dagster-dbt invocation leaves a folder of artifacts; keep the most recent ones.
    if not target.is_dir():
        return
    runs = sorted((p for p in target.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _dbt_on_path() -> None:
    # `.venv/bin/recon` or `.venv/bin/pytest` may run without the venv on PATH; dbt lives beside Python.
    if shutil.which("dbt") is None:
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@cache
def _project_for(config_json: str, state_dir: str, duckdb_path: str) -> DbtProject:
    recon_vars = json.loads(config_json)
    os.environ[DUCKDB_PATH_ENV] = duckdb_path
    _dbt_on_path()
    project_dir = Path(state_dir) / "dbt" / "project"
    lay_out_project(project_dir, DBT_PROJECT_DIR, recon_vars["recon"])
    target = Path(state_dir) / "dbt" / "target"
    target.mkdir(parents=True, exist_ok=True)
    os.environ["DBT_TARGET_PATH"] = str(target)
    project = DbtProject(project_dir=project_dir, target_path=target)
    stamp = target / "recon_prepared.sha256"
    fingerprint = _fingerprint(config_json)
    if not project.manifest_path.exists() or not stamp.exists() or stamp.read_text() != fingerprint:
        try:  # in this process (dagster-dbt's preparer would start a dbt subprocess); the manifest is kept
            parse_project(project_dir, Path(project.profiles_dir or project_dir), target, config_json)
        except Exception as exc:  # dbt could not parse: say why in a line, not in dbt's stack trace
            why = str(exc)
            os_error = re.search(r"\[Errno \d+\][^\n]*", why)  # a full disk, a read-only folder: say just that
            said = os_error.group(0) if os_error else "\n".join(without_traceback(why).splitlines()[:5])
            raise DbtPrepareError(f"dbt could not parse the project of this config: {said} "
                                  f"(dbt's log: {target / 'dbt.log'})") from None
        stamp.write_text(fingerprint)
    return project


class DbtPrepareError(PlainError):
    """dbt failed to parse this config's project (the message says why and where dbt's log is)."""


def get_dbt_project(config: ReconConfig) -> DbtProject:
    """The prepared DbtProject for this config: its project folder laid out, manifest up to date."""
    config_json = json.dumps(config.dbt_vars(), sort_keys=True)
    os.environ.update(engine_dbt_env(config))  # the profile's target is the config's engine
    os.environ[DUCKDB_MEMORY_LIMIT_ENV] = config.project.duckdb_memory_limit  # as the runs will have it
    return _project_for(config_json, str(config.state_dir), str(config.duckdb_path))


class ReconDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource, running dbt inside the step's process (``dbt_in_process``).

    ``cli`` takes the same arguments and returns dagster-dbt's own ``DbtCliInvocation``, so assets
    stream it as usual (``dbt.cli(args, context=context).stream()``); the selection a Dagster run asks
    for (a subset of models or checks) is computed by dagster-dbt as for a subprocess. Only the process
    differs: dbt runs in a thread of this one, on a manifest parsed once per process.
    """

    # The config's state folder: a run that runs dbt holds its run lock (``resources.run_lock.held_for_run``).
    state_dir: str | None = None

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[ReconDbtCliResource]:
        self.setup_for_execution(context)
        with held_for_run(self.state_dir, context):
            yield self

    @cached_property
    def _cli_version(self) -> version.Version:
        # dagster-dbt would run `dbt --version` (a ~2 s subprocess) to learn what is installed here.
        return version.parse(importlib.metadata.version("dbt-core"))

    def cli(self, args: Sequence[str], *, raise_on_error: bool = True, manifest: Any = None,  # type: ignore[override]
            dagster_dbt_translator: DagsterDbtTranslator | None = None,
            context: dg.OpExecutionContext | dg.AssetExecutionContext | None = None,
            target_path: Path | None = None) -> DbtCliInvocation:
        translator = validate_opt_translator(dagster_dbt_translator) or DagsterDbtTranslator()
        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context, manifest=validate_manifest(manifest) if manifest else {},
            dagster_dbt_translator=translator, runtime_selects=selects, runtime_excludes=excludes)
        project = params.dbt_project
        project_dir = Path(project.project_dir if project else self.project_dir)
        profiles_dir = Path(self.profiles_dir or project_dir)
        target = Path(target_path or self._get_unique_target_path(context=context))
        if not target.is_absolute():
            target = project_dir / target
        target.mkdir(parents=True, exist_ok=True)
        prepared = Path(project.target_path) if project else project_dir / "target"
        if not prepared.is_absolute():
            prepared = project_dir / prepared
        dbt_args = [*self.global_config_flags, *cleaned, *params.selection_args,
                    *(["--profile", self.profile] if self.profile else []),
                    *(["--target", self.target] if self.target else []),
                    *(["--indirect-selection", params.indirect_selection] if params.indirect_selection else []),
                    "--quiet", "--no-send-anonymous-usage-stats", "--project-dir", str(project_dir),
                    "--profiles-dir", str(profiles_dir), "--target-path", str(target), "--log-path", str(target)]
        parsed = parsed_manifest(project_dir, profiles_dir, prepared, _vars_of(cleaned))
        return DbtCliInvocation(
            process=InProcessDbt(dbt_args, parsed),  # type: ignore[arg-type]  # a Popen, as far as dagster-dbt reads
            manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir, target_path=target, raise_on_error=raise_on_error,
            cli_version=self._cli_version, project=project, context=context, adapter=None)


def _vars_of(args: Sequence[str]) -> str:
    # The --vars of the command: the manifest is parsed with the same vars the command runs with.
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--vars" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--vars="):
            return arg.split("=", 1)[1]
    return "{}"


def get_dbt_resource(config: ReconConfig) -> DbtCliResource:
    """The dbt CLI resource for this config's project."""
    return ReconDbtCliResource(project_dir=get_dbt_project(config), state_dir=str(config.state_dir))
