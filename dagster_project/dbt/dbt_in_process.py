"""dbt run inside the Dagster process, streamed to Dagster exactly as dagster-dbt streams a dbt subprocess.

dagster-dbt runs every dbt command as a new ``dbt`` process and reads its JSON log lines from stdout.
On a demo-sized night that process costs more than the models: ~2 s to import dbt-core and its adapter,
~1.2 s to load the partial parse, before the first model; and the night has two dbt steps. Here the
same command runs through dbt's programmatic entry point (``dbtRunner``) in a thread of the step's
process, with the project parsed once per process (the ``Manifest`` is kept and handed to every later
invocation, as dbt documents for reuse), and each event dbt fires is written as the JSON line the CLI
would have printed into a pipe. dagster-dbt's own ``DbtCliInvocation`` reads that pipe, so the
materializations, asset-check results, error messages and the dbt log are dagster-dbt's, unchanged.

What a subprocess gave that this keeps: dbt's artifacts and ``dbt.log`` in a folder per invocation; the
exit status (0, 1 for failed nodes, 2 for an error); an interrupt (a terminated Dagster run cancels dbt's
open queries). What it does not: a crash inside dbt (a segfault) ends the step's process, not only dbt.
The day reaches dbt in ``RECON_AS_OF_DATE`` (never at parse time), so a kept manifest serves every day.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_LEVELS = {"info", "warn", "error"}  # what the CLI prints at its default log level
# What each invocation's ``dbt.log`` keeps: dbt's default is debug (every statement, connection and
# relation it touches), which dbt formats and writes line by line in the run's process: 0.2-0.4 s of a
# 7-9 s demo night (docs/performance.md). Info keeps what the CLI prints (each node's start, result and
# error). dbt's own DBT_LOG_LEVEL_FILE=debug (or a ``--log-level-file`` given) brings the debug lines back.
FILE_LOG_LEVEL = "info"


class InProcessDbt:
    """One dbt invocation running in a thread, shaped like the ``subprocess.Popen`` dagster-dbt reads.

    ``stdout`` yields one JSON log line per event (binary, as from a pipe); ``wait`` returns dbt's exit
    status; ``send_signal`` cancels the queries dbt has open (dagster-dbt sends SIGINT on interrupt; best
    effort through the adapter's ``cancel_open_connections``, not covered by a test). Those are all the
    parts of a ``Popen`` dagster-dbt's ``DbtCliInvocation`` uses.
    """

    def __init__(self, args: Sequence[str], manifest: Any) -> None:
        self.args = ["dbt", *args]
        self.returncode: int | None = None
        read, write = os.pipe()
        self.stdout = os.fdopen(read, "rb")
        self._sink = os.fdopen(write, "wb")
        self._reader_gone = False
        self._thread = threading.Thread(target=self._run, args=(list(args), manifest), name="dbt", daemon=True)
        self._thread.start()

    def _run(self, args: list[str], manifest: Any) -> None:
        try:
            self.returncode, _, failure = _run_dbt(args, manifest, self._emit)
            if failure is not None:
                self._line({"info": {"level": "error", "name": "InProcessDbtError", "msg": failure}, "data": {}})
        except BaseException as exc:  # noqa: BLE001 - a dbt crash must end the stream, with its reason
            self._line({"info": {"level": "error", "name": "InProcessDbtError", "msg": f"dbt failed: {exc!r}"},
                        "data": {}})
            self.returncode = 2
        finally:
            with contextlib.suppress(OSError):
                self._sink.close()

    def _emit(self, msg: Any) -> None:
        from dbt_common.events.functions import msg_to_dict

        if msg.info.level in _LEVELS:
            self._line(msg_to_dict(msg))

    def _line(self, event: dict[str, Any]) -> None:
        if self._reader_gone:
            return
        try:
            self._sink.write(orjson.dumps(event, default=str) + b"\n")
            self._sink.flush()
        except (BrokenPipeError, ValueError, OSError):  # the reader stopped (its step failed): let dbt finish
            self._reader_gone = True

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.returncode

    def send_signal(self, _signal: int) -> None:
        from dbt.adapters.factory import FACTORY

        for adapter in list(FACTORY.adapters.values()):
            with contextlib.suppress(Exception):  # best effort: dbt then fails its running nodes itself
                adapter.cancel_open_connections()


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open after a command (it would for a process's lifetime).

    A subprocess closed it by exiting. Left open, the step's process could not open the same file
    with another configuration (read-only, as the report and the CLI read it) until it exits.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing is held past the command
        return
    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # noqa: BLE001 - no environment: the command never connected
        return
    DuckDBConnectionManager.close_all_connections()  # forgets the environment ...
    environment.close()  # ... and this closes its database now (not when the garbage collector gets to it)


_MANIFESTS: dict[tuple[str, str, str], tuple[int, Any]] = {}  # (project, profiles, vars) -> (manifest mtime, Manifest)


def parse_project(project_dir: Path, profiles_dir: Path, target: Path, vars_json: str) -> Any:
    """``dbt parse`` in this process, writing ``manifest.json`` and the partial parse into ``target``.

    This prepares a project (dagster-dbt's preparer would run the same command as a subprocess); the
    parsed ``Manifest`` is kept for the commands this process runs next. Raises ``DbtParseError``.
    """
    manifest = _invoke_parse(project_dir, profiles_dir, target, vars_json, write=True)
    stamp = (target / "manifest.json").stat().st_mtime_ns
    _MANIFESTS[(str(project_dir), str(profiles_dir), vars_json)] = (stamp, manifest)
    return manifest


def parsed_manifest(project_dir: Path, profiles_dir: Path, prepared_target: Path, vars_json: str) -> Any:
    """dbt's parsed ``Manifest`` of a prepared project, parsed once per process and per prepared manifest.

    The prepared target (where ``dbt parse`` left ``manifest.json`` and ``partial_parse.msgpack``) is
    not written: the partial parse is copied to a scratch folder and read there (~1 s instead of a full
    parse). A project prepared again (its manifest's mtime changed) is parsed again.
    """
    manifest_json = prepared_target / "manifest.json"
    stamp = manifest_json.stat().st_mtime_ns if manifest_json.exists() else 0
    key = (str(project_dir), str(profiles_dir), vars_json)
    kept = _MANIFESTS.get(key)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    scratch = Path(tempfile.mkdtemp(prefix="recon-dbt-parse-"))
    try:
        partial = prepared_target / "partial_parse.msgpack"
        if partial.exists():
            shutil.copy(partial, scratch / partial.name)
        manifest = _invoke_parse(project_dir, profiles_dir, scratch, vars_json, write=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _MANIFESTS[key] = (stamp, manifest)
    return manifest


class DbtParseError(Exception):
    """dbt could not parse the project; the message is dbt's own reason."""


def _invoke_parse(project_dir: Path, profiles_dir: Path, target: Path, vars_json: str, *, write: bool) -> Any:
    outcome = invoke([
        "parse", "--quiet", "--write-json" if write else "--no-write-json", "--no-send-anonymous-usage-stats",
        "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir),
        "--target-path", str(target), "--log-path", str(target), "--vars", vars_json])
    if outcome.returncode != 0:
        raise DbtParseError("\n".join(outcome.errors) or outcome.stdout)
    return outcome.result


@dataclass(frozen=True)
class DbtOutcome:
    """One dbt command run in this process: its exit status as the CLI gives it (0, 1 for failed nodes,
    2 for an error), what the CLI would have printed at its default level, its errors, and dbt's result."""

    returncode: int
    stdout: str
    errors: list[str]
    result: Any


def invoke(args: Sequence[str], *, manifest: Any = None, env: Mapping[str, str] | None = None) -> DbtOutcome:
    """Run one dbt command in this process (the database is released after it, as a subprocess's exit would).

    For commands whose events nobody streams: preparing a project here, the onboarding preview, tests
    that run dbt itself. ``env``: variables dbt reads (``env_var()``: the database, the as-of day) set for
    this command only, as a subprocess's environment would be; the process's own come back after it.
    """
    printed: list[str] = []
    errors: list[str] = []

    def keep(msg: Any) -> None:
        if msg.info.level in _LEVELS:
            printed.append(msg.info.msg)
        if msg.info.level == "error":
            errors.append(msg.info.msg)

    with environment(env or {}):
        code, result, failure = _run_dbt(args, manifest, keep)
    if failure is not None:
        printed.append(failure)
        errors.append(failure)
    return DbtOutcome(code, "\n".join(printed), errors, result)


def _run_dbt(args: Sequence[str], manifest: Any, callback: Callable[[Any], None]) -> tuple[int, Any, str | None]:
    """dbt's programmatic run of one command: (exit status as the CLI gives it, dbt's result, its exception)."""
    from dbt.cli.main import dbtRunner

    args = list(args)
    if "DBT_LOG_LEVEL_FILE" not in os.environ and "--log-level-file" not in args:
        args += ["--log-level-file", FILE_LOG_LEVEL]
    try:
        result = dbtRunner(manifest=manifest, callbacks=[callback]).invoke(args)
    finally:
        _release_duckdb()
    failure = None if result.exception is None else str(result.exception)
    return (0 if result.success else 2 if failure is not None else 1), result.result, failure


@contextlib.contextmanager
def environment(overrides: Mapping[str, str], *, restores: Sequence[str] = ()) -> Iterator[None]:
    """Set ``overrides`` in ``os.environ`` for the body; afterwards they, and ``restores``, are as before."""
    saved = {name: os.environ.get(name) for name in (*overrides, *restores)}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
