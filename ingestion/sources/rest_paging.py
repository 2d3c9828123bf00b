"""Pagination of the REST API source: how the request for the next page is made from the last one.

Types (``streams.<name>.pagination.type``)::

    none         one request
    cursor       the page holds the next cursor at cursor_path; sent as cursor_param
    offset       offset_param advances by the records read; limit_param = page_size
    page         page_param counts from start
    last_record  a field of the page's last record (last_record_path, default id) is sent as
                 cursor_param (Stripe: starting_after=<last id>); stops when has_more_path is false
                 or missing, or on an empty page
    link_header  the URL of the RFC 8288 ``Link: <...>; rel="next"`` header (GitHub, Shopify)
    next_url     a full (or relative) URL in the page at next_url_path

Every type stops on an empty page. A next URL (link_header, next_url) is followed as it is (its
query carries the API's own state, so the stream's params are not added again) and only on the
origin of ``base_url``: the credentials are never sent to another host. A next request equal to
the one just made fails the sync (a server repeating its cursor would otherwise loop forever).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ingestion.protocol import ConnectorError

# Keys each type takes (besides `type`) and those it needs; the spec is built from these.
PAGINATION_KEYS: dict[str, tuple[str, ...]] = {
    "none": (),
    "cursor": ("cursor_path", "cursor_param"),
    "offset": ("offset_param", "limit_param", "page_size"),
    "page": ("page_param", "start"),
    "last_record": ("cursor_param", "last_record_path", "has_more_path"),
    "link_header": ("rel",),
    "next_url": ("next_url_path",),
}
PAGINATION_REQUIRED: dict[str, tuple[str, ...]] = {"last_record": ("cursor_param",), "next_url": ("next_url_path",)}


def pagination_schema() -> dict[str, Any]:
    """The JSON schema of ``pagination``: the keys of every type, and per type which it needs and allows."""
    per_type = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {
                "required": list(PAGINATION_REQUIRED.get(kind, ())),
                "propertyNames": {"enum": ["type", *keys]},
            },
        }
        for kind, keys in PAGINATION_KEYS.items()
    ]
    return {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": list(PAGINATION_KEYS)},
            "cursor_path": {"type": "string", "description": "dotted path of the next cursor in the page"},
            "cursor_param": {"type": "string", "description": "query parameter the cursor is sent as"},
            "offset_param": {"type": "string", "default": "offset"},
            "limit_param": {"type": "string", "default": "limit"},
            "page_size": {"type": "integer", "minimum": 1, "default": 100},
            "page_param": {"type": "string", "default": "page"},
            "start": {"type": "integer", "default": 1},
            "last_record_path": {"type": "string", "default": "id",
                                 "description": "dotted path, in a record, of the value sent as cursor_param"},
            "has_more_path": {"type": "string", "description": "dotted path of the 'more pages' flag in the page"},
            "rel": {"type": "string", "default": "next", "description": "relation of the Link header to follow"},
            "next_url_path": {"type": "string", "description": "dotted path of the next page's URL in the page"},
        },
        "allOf": per_type,
    }


def dig(node: Any, path: str) -> Any:
    """The value at a dotted path (``a.b.0.c``; list items by index); None when absent."""
    for part in [p for p in path.split(".") if p]:
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


@dataclass
class PageRequest:
    """One page's request: the URL and the query parameters added to it."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)


class Paginator:
    """Makes the first request of a stream and, from each answer, the next (None: the last page).

    Args:
        pagination: the stream's ``pagination`` options (validated by the spec).
        base_url: the source's ``base_url`` (next URLs must share its origin).
        where: names the stream in errors.
    """

    def __init__(self, pagination: Mapping[str, Any], base_url: str, where: str) -> None:
        self.options = dict(pagination)
        self.kind = self.options.get("type", "none")
        self.origin = _origin(base_url)
        self.where = where
        self.offset = 0
        self.page_number = int(self.options.get("start", 1))

    def first(self, url: str, params: Mapping[str, Any]) -> PageRequest:
        """The first page's request from the stream's URL and params."""
        out = PageRequest(url, dict(params))
        if self.kind == "offset":
            out.params[self.options.get("limit_param", "limit")] = int(self.options.get("page_size", 100))
            out.params[self.options.get("offset_param", "offset")] = 0
        elif self.kind == "page":
            out.params[self.options.get("page_param", "page")] = self.page_number
        return out

    def next(self, request: PageRequest, body: Any, response: requests.Response, records: list[Any]) -> PageRequest | None:
        """The next page's request, or None when ``request`` fetched the last page.

        Args:
            request: the request just made.
            body: its parsed JSON.
            response: its response (headers).
            records: the page's records (as listed, valid or not).

        Raises:
            ConnectorError: the next page cannot be asked for safely (no usable last record, a next URL
                on another origin, a next request equal to the last).
        """
        if not records or self.kind == "none":
            return None
        o = self.options
        nxt: PageRequest | None
        if self.kind == "cursor":
            token = dig(body, o.get("cursor_path", "next_cursor"))
            nxt = None if not token else PageRequest(request.url, {**request.params, o.get("cursor_param", "cursor"): token})
        elif self.kind == "offset":
            if len(records) < int(o.get("page_size", 100)):
                return None
            self.offset += len(records)
            nxt = PageRequest(request.url, {**request.params, o.get("offset_param", "offset"): self.offset})
        elif self.kind == "page":
            self.page_number += 1
            nxt = PageRequest(request.url, {**request.params, o.get("page_param", "page"): self.page_number})
        elif self.kind == "last_record":
            if o.get("has_more_path") and not _truthy(dig(body, o["has_more_path"])):
                return None
            nxt = PageRequest(request.url, {**request.params, o["cursor_param"]: self._last_value(records)})
        elif self.kind == "link_header":
            link = (response.links or {}).get(o.get("rel", "next")) or {}
            nxt = self._follow(response.url, link.get("url"))
        elif self.kind == "next_url":
            nxt = self._follow(response.url, dig(body, o["next_url_path"]))
        else:
            raise ConnectorError(f"{self.where}: unknown pagination type {self.kind!r}")
        if nxt is not None and (nxt.url, nxt.params) == (request.url, request.params):
            raise ConnectorError(f"{self.where}: pagination does not advance (the next page is the one just read)")
        return nxt

    def _last_value(self, records: list[Any]) -> Any:
        path = self.options.get("last_record_path", "id")
        # The last record that has the value: a malformed last record must not end the read early.
        for record in reversed(records):
            value = dig(record, path) if isinstance(record, Mapping) else None
            if value is not None and value != "":
                return value
        raise ConnectorError(f"{self.where}: pagination last_record: no record of the page has {path!r}, "
                             "so the next page cannot be asked for")

    def _follow(self, current_url: str, link: Any) -> PageRequest | None:
        if not link or not isinstance(link, str):
            return None
        url = urljoin(current_url, link)
        if _origin(url) != self.origin:
            raise ConnectorError(f"{self.where}: the next page is on {_origin(url)}, not on the base_url's "
                                 f"{self.origin}; not followed (the credentials go to base_url only)")
        return PageRequest(url, {})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
