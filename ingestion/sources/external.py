"""Any Airbyte source connector, run as a command: spec, check, discover and read over stdout.

The connector is an executable (for example ``source-faker`` from PyPI, installed in its own virtual
environment, as Airbyte's Python connectors are). The runner writes the connector's config, the
configured catalog and the state into a private temporary folder (mode 0700, removed afterwards),
runs ``<command> read --config ... --catalog ... [--state ...]`` and parses each stdout line as an
Airbyte message, streaming (records are never collected in memory). A line that is not a message is
quarantined with its reason; stderr is kept (its tail, secrets redacted) for the error message; a
non-zero exit or a TRACE error fails the sync with the connector's own message.

Options (``systems.<name>.options``)::

    command: [/opt/connectors/faker/bin/source-faker]   # or one string, split like a shell would
    config: {count: 1000, seed: 42}                      # the connector's own config;
                                                         # secrets as {env: VARIABLE_NAME}
    env: {LOG_LEVEL: INFO}                               # extra environment for the process
    timeout_seconds: 3600                                # kill the connector after this long
    streams:
      users: {}                                          # optional, per stream (e.g. cursor_field)
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ingestion.protocol import (
    ALL_DESTINATION_SYNC_MODES,
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    ConfigError,
    ConfiguredAirbyteCatalog,
    ConnectorError,
    ConnectorSpecification,
    Status,
    Type,
    connector_spec,
    parse_message,
    stream_options_spec,
)

SPEC = connector_spec(
    "Airbyte connector (command)",
    "https://docs.airbyte.com/understanding-airbyte/airbyte-protocol",
    ["command"],
    {
        "command": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string"}},
            ]
        },
        "config": {"type": "object", "description": "the connector's config; secrets as {env: NAME}"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 3600},
        "streams": stream_options_spec({"cursor_field": {"type": ["string", "null"]}}),
    },
    sync_modes=ALL_DESTINATION_SYNC_MODES,
)


def command_of(config: Mapping[str, Any]) -> list[str]:
    command = config.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    if not command:
        raise ConfigError("airbyte_command: 'command' is required")
    return [os.path.expanduser(str(c)) for c in command]


#: How long the connector's own children may keep its output open after it exited (seconds).
LINGER_SECONDS = 5.0


class _Run:
    """One connector process: stdout lines as messages, stderr tail kept, timeout enforced.

    The connector runs in its own process group. A connector's output ends when its process exits, but
    a child it spawned (source-faker reads with worker processes) can outlive it holding stdout open,
    and reading would then wait forever: LINGER_SECONDS after the connector exits, or at the timeout,
    the whole group is killed.
    """

    def __init__(self, config: Mapping[str, Any], args: list[str], files: dict[str, Any]) -> None:
        self.config = config
        self.tmp = tempfile.TemporaryDirectory(prefix="recon-connector-")
        os.chmod(self.tmp.name, 0o700)
        argv = command_of(config) + args
        for flag, content in files.items():
            path = Path(self.tmp.name) / f"{flag}.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(content, fh, default=str)
            argv += [f"--{flag}", str(path)]
        env = {**os.environ, **{str(k): str(v) for k, v in (config.get("env") or {}).items()}}
        try:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                bufsize=1024 * 1024, start_new_session=True,
            )
        except OSError as e:
            self.tmp.cleanup()
            raise ConnectorError(f"cannot start connector {argv[0]!r}: {e}") from None
        self.stderr: deque[str] = deque(maxlen=40)
        self._err_thread = threading.Thread(target=self._drain, daemon=True)
        self._err_thread.start()
        self.deadline = time.monotonic() + float(config.get("timeout_seconds", 3600))
        self.timed_out = False
        self._timer = threading.Timer(float(config.get("timeout_seconds", 3600)), self._timeout)
        self._timer.daemon = True
        self._timer.start()
        self._output_done = threading.Event()
        threading.Thread(target=self._reap_leftovers, daemon=True).start()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _reap_leftovers(self) -> None:
        self.proc.wait()
        if not self._output_done.wait(LINGER_SECONDS):
            self._kill_group()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def _timeout(self) -> None:
        self.timed_out = True
        self._kill_group()

    def lines(self) -> Iterator[bytes]:
        assert self.proc.stdout is not None
        yield from self.proc.stdout
        self._output_done.set()

    def finish(self, what: str) -> None:
        """Wait for the process; raise if it failed (naming the command and its last stderr lines)."""
        try:
            code = self.proc.wait()
            self._err_thread.join(timeout=5)
        finally:
            self._timer.cancel()
            self.tmp.cleanup()
        if self.timed_out:
            raise ConnectorError(f"connector {what} timed out after {self.config.get('timeout_seconds', 3600)} s")
        if code != 0:
            tail = " | ".join(list(self.stderr)[-5:])
            raise ConnectorError(f"connector {what} exited with code {code}" + (f": {tail}" if tail else ""))

    def abort(self) -> None:
        self._kill_group()
        self.proc.wait()
        self._timer.cancel()
        self.tmp.cleanup()


class SourceExternal:
    """Runs an Airbyte source connector executable (see the module docstring)."""

    def _raw(self, config: Mapping[str, Any], args: list[str], files: dict[str, Any]) -> list[dict[str, Any]]:
        run = _Run(config, args, files)
        out = []
        try:
            for line in run.lines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        except BaseException:
            run.abort()
            raise
        failure = next((m for m in out if m.get("type") == "TRACE" and (m.get("trace") or {}).get("type") == "ERROR"), None)
        try:
            run.finish(args[0])
        except ConnectorError as e:
            if failure:
                raise ConnectorError(f"{e}; connector says: {failure['trace']['error'].get('message')}") from None
            raise
        return out

    def spec(self, config: Mapping[str, Any] | None = None) -> ConnectorSpecification:
        """The connector's own spec (needs ``command``); without config, this runner's options spec."""
        if not config:
            return SPEC
        for m in self._raw(config, ["spec"], {}):
            if m.get("type") == "SPEC":
                s = m["spec"]
                return ConnectorSpecification(
                    connection_specification=s.get("connectionSpecification", {}),
                    documentation_url=s.get("documentationUrl"),
                )
        raise ConnectorError("connector printed no SPEC message")

    def check(self, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        try:
            for m in self._raw(config, ["check"], {"config": config.get("config") or {}}):
                if m.get("type") == "CONNECTION_STATUS":
                    s = m["connectionStatus"]
                    return AirbyteConnectionStatus(Status(s["status"]), s.get("message"))
        except ConnectorError as e:
            return AirbyteConnectionStatus(Status.FAILED, str(e))
        return AirbyteConnectionStatus(Status.FAILED, "connector printed no CONNECTION_STATUS message")

    def discover(self, config: Mapping[str, Any]) -> AirbyteCatalog:
        for m in self._raw(config, ["discover"], {"config": config.get("config") or {}}):
            if m.get("type") == "CATALOG":
                return AirbyteCatalog.from_dict(m["catalog"])
        raise ConnectorError("connector printed no CATALOG message")

    def read(
        self,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Mapping[str, Mapping[str, Any]] | None,
    ) -> Iterator[AirbyteMessage]:
        """Run ``read`` and yield its messages as they arrive (RECORD, STATE, LOG, TRACE, INVALID)."""
        files: dict[str, Any] = {"config": config.get("config") or {}, "catalog": catalog.to_dict()}
        states = [
            AirbyteStateMessage(stream=name, stream_state=dict(s)).to_dict()
            for name, s in (state or {}).items()
            if s
        ]
        if states:
            files["state"] = states
        default = catalog.streams[0].stream.name if len(catalog.streams) == 1 else None
        run = _Run(config, ["read"], files)
        failure: AirbyteMessage | None = None
        try:
            for line in run.lines():
                if not line.strip():
                    continue
                m = parse_message(line, default)
                if m.type == Type.TRACE and m.trace is not None and m.trace.type == "ERROR":
                    failure = m
                    continue  # raised after the exit code is known, with the connector's message
                if m.type == Type.INVALID and m.invalid is not None and m.invalid.stream is None:
                    m.invalid.stream = default
                yield m
        except BaseException:
            run.abort()
            raise
        try:
            run.finish("read")
        except ConnectorError as e:
            if failure is not None and failure.trace is not None:
                raise ConnectorError(f"{e}; connector says: {failure.trace.message}") from None
            raise
        if failure is not None:
            yield failure
