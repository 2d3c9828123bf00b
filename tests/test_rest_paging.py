"""rest_api pagination types against a loopback API that pages each way, through 429s and 5xxs,
over several incremental syncs: every record version lands once, none is lost, none is doubled.

Waits are asserted as asked of an injected clock (FakeClock), never measured on the wall clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import duckdb
import pytest
from loopback_api import FakeClock, LoopbackApi, link_header, serve

from ingestion.connectors import ConnectorStream, validate_options
from ingestion.protocol import ConnectorError
from ingestion.sync import sync_stream

TOKEN = "tok-" + "p" * 20
PAGE = 3
T0 = 1790000000


def _rows(api: LoopbackApi, since: str | None, inclusive: bool = False) -> list[dict[str, Any]]:
    rows = sorted(api.records, key=lambda r: (r["updated"], r["id"]))
    if since is None:
        return rows
    return [r for r in rows if (r["updated"] >= int(since) if inclusive else r["updated"] > int(since))]


def cursor_route(api: LoopbackApi, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """Next cursor in the page (``next_cursor``), incremental by ``updated_since``."""
    rows = _rows(api, q.get("updated_since"))
    start = int(q.get("cursor", 0))
    more = start + PAGE < len(rows)
    return 200, {"data": rows[start:start + PAGE], "next_cursor": start + PAGE if more else None}, {}


def stripe_route(api: LoopbackApi, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """Stripe style: ``starting_after=<last id>``, ``has_more``, incremental by ``updated[gt]``."""
    rows = _rows(api, q.get("updated[gt]"))
    limit = int(q.get("limit", 10))
    start = 0
    if "starting_after" in q:
        ids = [r["id"] for r in rows]
        if q["starting_after"] not in ids:
            return 400, {"error": {"message": f"No such object: {q['starting_after']}"}}, {}
        start = ids.index(q["starting_after"]) + 1
    page = rows[start:start + limit]
    return 200, {"object": "list", "data": page, "has_more": start + limit < len(rows)}, {}


def shopify_route(api: LoopbackApi, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """Shopify style: ``Link`` header with ``page_info``; ``updated_at_min`` inclusive; page_info must
    come alone (with limit), as Shopify requires."""
    limit = int(q.get("limit", 50))
    if "page_info" in q:
        if set(q) - {"page_info", "limit"}:
            return 400, {"errors": "page_info cannot be combined with other parameters"}, {}
        state = json.loads(base64.urlsafe_b64decode(q["page_info"]))
        since, start = state["since"], state["offset"]
    else:
        since, start = q.get("updated_at_min"), 0
    rows = _rows(api, since, inclusive=True)
    rels: dict[str, dict[str, Any]] = {}

    def token(offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"since": since, "offset": offset}).encode()).decode()

    if start > 0:
        rels["previous"] = {"limit": limit, "page_info": token(max(0, start - limit))}
    if start + limit < len(rows):
        rels["next"] = {"limit": limit, "page_info": token(start + limit)}
    headers = {"Link": link_header(api.base, path, rels)} if rels else {}
    return 200, {"orders": rows[start:start + limit]}, headers


def next_url_route(api: LoopbackApi, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """A relative ``links.next`` URL in the body; no server-side incremental filter at all."""
    rows = _rows(api, None)
    start = int(q.get("after", 0))
    more = start + PAGE < len(rows)
    return 200, {"results": rows[start:start + PAGE], "links": {"next": f"{path}?after={start + PAGE}" if more else None}}, {}


STYLES: dict[str, dict[str, Any]] = {
    "cursor": {"path": "/cursor", "records_path": "data", "incremental_param": "updated_since",
               "pagination": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"}},
    "last_record": {"path": "/v1/charges", "records_path": "data", "incremental_param": "updated[gt]",
                    "params": {"limit": PAGE},
                    "pagination": {"type": "last_record", "cursor_param": "starting_after", "has_more_path": "has_more"}},
    "link_header": {"path": "/admin/orders.json", "records_path": "orders", "incremental_param": "updated_at_min",
                    "params": {"limit": PAGE}, "pagination": {"type": "link_header"}},
    "next_url": {"path": "/items", "records_path": "results",
                 "pagination": {"type": "next_url", "next_url_path": "links.next"}},
}
ROUTES = {"/cursor": cursor_route, "/v1/charges": stripe_route, "/admin/orders.json": shopify_route,
          "/items": next_url_route}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackApi]:
    monkeypatch.setenv("RECON_TEST_PAGING_TOKEN", TOKEN)
    state = LoopbackApi(routes=dict(ROUTES), token=TOKEN)
    server = serve(state)
    yield state
    server.shutdown()
    server.server_close()


def stream_for(api: LoopbackApi, style: str, **options: Any) -> ConnectorStream:
    opts: dict[str, Any] = {
        "base_url": api.base,
        "auth": {"type": "bearer", "token": {"env": "RECON_TEST_PAGING_TOKEN"}},
        "max_retries": 4,
        "backoff_seconds": 0.5,
        "streams": {"items": {**STYLES[style], "json_schema": {"type": "object", "properties": {
            "id": {"type": "string"}, "amount": {"type": "integer"}, "updated": {"type": "integer"}}}}},
    }
    opts.update(options)
    validate_options("api", "rest_api", opts, ["items"])
    return ConnectorStream("api", "items", "rest_api", opts, ["id"], "updated")


def landed(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    return con.execute("select id, updated from raw_api.items order by id, updated").fetchall()


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_version_lands_once_across_syncs_through_429_and_5xx(api: LoopbackApi, style: str) -> None:
    api.records = [{"id": f"r{i:02d}", "amount": 100 + i, "updated": T0 + i} for i in range(1, 11)]
    con = duckdb.connect()
    clock = FakeClock()
    stream = stream_for(api, style)

    # Sync 1: 4 pages, a 429 (Retry-After: 2) before page 2, a 503 and a 502 before page 3.
    api.faults = {2: (429, {"Retry-After": "2"}), 4: (503, {}), 5: (502, {})}
    first = sync_stream(con, stream, source=clock.source())
    assert clock.sleeps == [2.0, 0.5, 1.0]  # Retry-After as sent, then the exponential backoff
    assert first.records_read == first.records_landed == 10
    assert landed(con) == [(f"r{i:02d}", T0 + i) for i in range(1, 11)]
    assert first.state == {"cursor_field": "updated", "cursor_value": T0 + 10}

    # Sync 2: two records changed, three new; a 500 on the way. Only those five versions land.
    for r in api.records:
        if r["id"] in ("r03", "r07"):
            r["updated"] = T0 + (11 if r["id"] == "r03" else 12)
    api.records += [{"id": f"r{i:02d}", "amount": 100 + i, "updated": T0 + i + 2} for i in range(11, 14)]
    sent_from = len(api.calls)
    api.faults = {sent_from + 2: (500, {})}
    second = sync_stream(con, stream, source=clock.source())
    assert second.records_read == second.records_landed == 5
    expected = sorted([(f"r{i:02d}", T0 + i) for i in range(1, 11)]
                      + [("r03", T0 + 11), ("r07", T0 + 12)] + [(f"r{i:02d}", T0 + i + 2) for i in range(11, 14)])
    assert landed(con) == expected  # nothing lost, nothing doubled
    assert second.state == {"cursor_field": "updated", "cursor_value": T0 + 15}
    incremental = STYLES[style].get("incremental_param")
    if incremental:
        assert api.calls[sent_from][1].get(incremental) == str(T0 + 10)

    # Sync 3: nothing changed; the saved cursor is resumed and nothing comes back.
    third = sync_stream(con, stream, source=clock.source())
    assert third.records_read == 0
    assert landed(con) == expected
    assert third.state == second.state


def test_rate_limit_and_retry_after_date_are_asked_of_the_clock(api: LoopbackApi) -> None:
    api.records = [{"id": f"r{i:02d}", "amount": i, "updated": T0 + i} for i in range(1, 8)]
    clock = FakeClock()
    when = clock.start + timedelta(seconds=7)
    api.faults = {1: (429, {"Retry-After": format_datetime(when, usegmt=True)})}
    con = duckdb.connect()
    r = sync_stream(con, stream_for(api, "last_record", rate_limit_per_second=4), source=clock.source())
    assert r.records_landed == 7
    # 429 at t=0 with a date 7 s ahead: 7 s; then three pages, each a quarter second after the one before.
    assert clock.sleeps == pytest.approx([7.0, 0.25, 0.25])
    assert len(api.calls) == 4


def test_link_header_parsing_follows_only_rel_next(api: LoopbackApi) -> None:
    api.records = [{"id": f"r{i:02d}", "amount": i, "updated": T0 + i} for i in range(1, 8)]
    con = duckdb.connect()
    sync_stream(con, stream_for(api, "link_header"), source=FakeClock().source())
    assert len(landed(con)) == 7
    # Pages 2 and 3 carried rel="previous" before rel="next"; only next was followed, once per page.
    assert [("page_info" in q) for _, q in api.calls] == [False, True, True]


def test_next_page_on_another_origin_is_not_followed(api: LoopbackApi) -> None:
    api.records = [{"id": f"r{i:02d}", "amount": i, "updated": T0 + i} for i in range(1, 8)]
    api.routes["/items"] = lambda a, p, q: (200, {"results": _rows(a, None)[:PAGE],
                                                  "links": {"next": "http://203.0.113.9/items?after=3"}}, {})
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match=r"next page is on http://203\.0\.113\.9.*not followed"):
        sync_stream(con, stream_for(api, "next_url"), source=FakeClock().source())
    assert len(api.calls) == 1


def test_a_cursor_that_does_not_advance_fails_instead_of_looping(api: LoopbackApi) -> None:
    api.records = [{"id": f"r{i:02d}", "amount": i, "updated": T0 + i} for i in range(1, 8)]
    api.routes["/cursor"] = lambda a, p, q: (200, {"data": _rows(a, None)[:PAGE], "next_cursor": 3}, {})
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match="pagination does not advance"):
        sync_stream(con, stream_for(api, "cursor"), source=FakeClock().source())
    assert len(api.calls) == 2


def test_last_record_skips_a_malformed_last_record(api: LoopbackApi) -> None:
    api.records = [{"id": f"r{i:02d}", "amount": i, "updated": T0 + i} for i in range(1, 7)]

    def route(a: LoopbackApi, p: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = stripe_route(a, p, q)
        if "starting_after" not in q:
            body["data"].append(["not", "a", "record"])  # the page's last item is not an object
        return status, body, headers

    api.routes["/v1/charges"] = route
    con = duckdb.connect()
    r = sync_stream(con, stream_for(api, "last_record"), source=FakeClock().source())
    assert (r.records_landed, r.records_quarantined) == (6, 1)
    assert api.calls[1][1]["starting_after"] == "r03"


@pytest.mark.parametrize(("pagination", "message"), [
    ({"type": "last_record", "has_more_path": "has_more"}, "'cursor_param' is a required property"),
    ({"type": "next_url"}, "'next_url_path' is a required property"),
    ({"type": "link_header", "has_more_path": "has_more"}, "'has_more_path' is not one of"),
    ({"type": "keyset"}, "'keyset' is not one of"),
])
def test_pagination_options_are_checked_by_the_spec(pagination: dict[str, Any], message: str) -> None:
    options = {"base_url": "http://127.0.0.1:1", "streams": {"items": {"path": "/x", "pagination": pagination}}}
    with pytest.raises(ValueError) as e:
        validate_options("api", "rest_api", options, ["items"])
    assert "options.streams.items.pagination" in str(e.value)
    assert message in str(e.value)
