"""Our Airbyte protocol messages against the official models (airbyte-protocol-models, pydantic v2).

`ingestion/protocol.py` stays our own (see docs/architecture.md: two in-database extensions and no
pydantic object per record on the hot path); this holds it to the protocol: what our connectors write
validates as the official models, and what an official connector writes parses into the same content.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

models = pytest.importorskip("airbyte_protocol.models")

from ingestion.protocol import (  # noqa: E402
    AirbyteMessage,
    AirbyteTraceMessage,
    ConfiguredAirbyteCatalog,
    Type,
    log_message,
    message_to_dict,
    parse_message,
    record_message,
    state_message,
)
from ingestion.sources import airbyte_api, external, rest_api, sql_database  # noqa: E402
from ingestion.sources.file_drop import SPEC as FILE_DROP_SPEC  # noqa: E402
from ingestion.sources.file_drop import SourceFileDrop  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "file_drop"


@pytest.mark.parametrize("spec", [FILE_DROP_SPEC, rest_api.SPEC, sql_database.SPEC, external.SPEC, airbyte_api.SPEC],
                         ids=["file_drop", "rest_api", "sql", "airbyte_command", "airbyte_api"])
def test_every_connector_spec_is_an_official_connector_specification(spec) -> None:
    ours = spec.to_dict()
    official = models.ConnectorSpecification.model_validate(ours)
    assert official.connectionSpecification == ours["connectionSpecification"]
    models.AirbyteMessage.model_validate({"type": "SPEC", "spec": ours})


def test_a_discovered_catalog_and_its_configured_form_are_official(tmp_path: Path) -> None:
    data = tmp_path / "data" / "orders" / "2026-10-01.jsonl"
    data.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "orders" / "2026-10-01.jsonl", data)
    stamp = datetime(2026, 10, 2, 1, 30, tzinfo=UTC).timestamp()
    os.utime(data, (stamp, stamp))
    config = json.loads((FIXTURES / "config.json").read_text().replace("<DATA>", str(tmp_path / "data")))
    catalog = SourceFileDrop().discover(config).to_dict()
    official = models.AirbyteCatalog.model_validate(catalog)
    assert [s.name for s in official.streams] == [s["name"] for s in catalog["streams"]]
    assert all(s.json_schema["properties"] for s in official.streams)

    configured = {"streams": [{"stream": s, "sync_mode": "incremental", "destination_sync_mode": "append",
                               "cursor_field": ["updated_at"]} for s in catalog["streams"]]}
    ours = ConfiguredAirbyteCatalog.from_dict(configured).to_dict()
    assert models.ConfiguredAirbyteCatalog.model_validate(ours).streams[0].sync_mode.value == "incremental"


def test_the_messages_we_write_are_official_messages() -> None:
    written = [
        record_message("orders", {"id": 1, "nested": {"a": [1, 2]}}, 1_764_000_000_000, namespace="shop"),
        state_message("orders", {"cursor": "2026-10-01T00:00:00Z"}),
        log_message("WARN", "slow page"),
        AirbyteMessage(type=Type.TRACE, trace=AirbyteTraceMessage(
            type="ERROR", message="401 from the API", failure_type="config_error")),
    ]
    for message in written:
        as_json = json.loads(json.dumps(message_to_dict(message)))
        official = models.AirbyteMessage.model_validate(as_json)
        assert official.type.value == message.type.value


def test_what_an_official_connector_writes_parses_into_the_same_content() -> None:
    record = models.AirbyteMessage(type=models.Type.RECORD, record=models.AirbyteRecordMessage(
        stream="charges", namespace="psp", data={"id": "ch_1", "amount": 1250}, emitted_at=1_764_000_000_000))
    state = models.AirbyteMessage(type=models.Type.STATE, state=models.AirbyteStateMessage(
        type=models.AirbyteStateType.STREAM, stream=models.AirbyteStreamState(
            stream_descriptor=models.StreamDescriptor(name="charges"),
            stream_state=models.AirbyteStateBlob(cursor=1_764_000_000))))
    log = models.AirbyteMessage(type=models.Type.LOG, log=models.AirbyteLogMessage(
        level=models.Level.INFO, message="page 3"))
    trace = models.AirbyteMessage(type=models.Type.TRACE, trace=models.AirbyteTraceMessage(
        type=models.TraceType.ERROR, emitted_at=1.0, error=models.AirbyteErrorTraceMessage(
            message="bad key", failure_type=models.FailureType.config_error)))

    parsed = [parse_message(m.model_dump_json(exclude_none=True)) for m in (record, state, log, trace)]
    assert (parsed[0].type, parsed[0].record.stream, parsed[0].record.namespace, parsed[0].record.data) == (
        Type.RECORD, "charges", "psp", {"id": "ch_1", "amount": 1250})
    assert (parsed[1].type, parsed[1].state.stream, parsed[1].state.stream_state) == (
        Type.STATE, "charges", {"cursor": 1_764_000_000})
    assert (parsed[2].type, parsed[2].log.level, parsed[2].log.message) == (Type.LOG, "INFO", "page 3")
    assert (parsed[3].type, parsed[3].trace.message, parsed[3].trace.failure_type) == (
        Type.TRACE, "bad key", "config_error")
