"""The one cached factory for the dbt project.

The manifest depends on the config (the staging models and sources are generated from it, and the
config reaches dbt as ``--vars``), so each config gets its own dbt project folder under its state
dir (links to the committed ``dbt_project/`` plus the generated staging), and the factory re-parses
whenever the config or the dbt project's files changed. Under ``dagster dev`` ``prepare_if_dev`` does the
same on every code reload. Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
from functools import cache, cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from dagster_project.lib.config import ReconConfig
from dagster_project.lib.dbt_codegen import lay_out_project
from dagster_project.lib.errors import PlainError, without_traceback

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DUCKDB_PATH_ENV = "RECON_DUCKDB_PATH"
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
    project = DbtProject(
        project_dir=project_dir,
        target_path=target,
        prepare_project_cli_args=["parse", "--quiet", "--vars", config_json],
    )
    project.prepare_if_dev()
    stamp = target / "recon_prepared.sha256"
    fingerprint = _fingerprint(config_json)
    if not project.manifest_path.exists() or not stamp.exists() or stamp.read_text() != fingerprint:
        try:
            project.preparer.prepare(project)
        except Exception as exc:  # dbt could not parse: say why in a line, not in dbt's stack trace
            why = str(exc).split("Errors parsed from dbt logs:")[-1]  # dagster-dbt quotes dbt's own words last
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
    return _project_for(config_json, str(config.state_dir), str(config.duckdb_path))


class ReconDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, told dbt's version instead of asking it.

    dagster-dbt runs ``dbt --version`` (a ~2 s subprocess, most of it importing dbt) once per resource
    instance, which is once per run. The dbt it invokes is the dbt-core installed beside this Python
    (``_dbt_on_path``), so the installed package's version is the same answer.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))


def get_dbt_resource(config: ReconConfig) -> DbtCliResource:
    """The dbt CLI resource for this config's project."""
    return ReconDbtCliResource(project_dir=get_dbt_project(config))
