"""Collects the demo records per stream and file day, in each system's native shape.

A record goes into the file of the UTC day of its update time; a late-arriving record one day later;
a record whose file day is an outage day of its system into the next day that has a file. The file
day is the day the record becomes visible (its file's mtime is that day's 23:59:59 UTC), so every
emit method returns it. Records whose file day falls after the window are not written.
"""

from __future__ import annotations

from collections import defaultdict

from ingestion.demo.timefmt import Clock

STREAMS: tuple[str, ...] = (
    "shop/orders",
    "psp/charges",
    "psp/refunds",
    "erp/documents",
    "wms/shipments",
    "crm/accounts",
)
#: The role each demo system plays (names as in dagster_project/config/demo.yaml).
SYSTEM_ROLES: dict[str, str] = {
    "shop": "orders",
    "psp": "payments",
    "erp": "invoices",
    "wms": "fulfillments",
    "crm": "customers",
}


def money(cents: int) -> str:
    """Minor units as a decimal string with two places (`-12.30` for -1230)."""
    if cents < 0:
        return "-" + money(-cents)
    return f"{cents // 100}.{cents % 100:02d}"


class Sink:
    """Per-stream, per-file-day buckets of rendered records."""

    def __init__(self, clock: Clock, start_ts: int, days: int, outages: dict[str, set[int]]) -> None:
        self.clock = clock
        self.start_ts = start_ts
        self.last = days - 1
        self.outages = outages
        # stream -> day -> [(sort_ts, rendered line or WMS row tuple)]
        self.buckets: dict[str, dict[int, list]] = {s: defaultdict(list) for s in STREAMS}

    def day_of(self, ts: int) -> int:
        """Day index of the UTC date of `ts` (0 = first window day; negative before the window)."""
        return (ts - self.start_ts) // 86400

    def vis(self, system: str, ts: int, late: bool = False) -> int:
        """The file day (= first visible as-of day index) a record of `system` updated at `ts` lands in."""
        day = max(0, (ts - self.start_ts) // 86400) + (1 if late else 0)
        gaps = self.outages.get(system)
        while gaps and day in gaps:
            day += 1
        return day

    def _put(self, stream: str, system: str, ts: int, late: bool, day: int | None, row: object) -> int:
        natural = self.vis(system, ts, late)
        if day is None or day < natural:
            day = natural
        gaps = self.outages.get(system)
        while gaps and day in gaps:
            day += 1
        if day <= self.last:
            self.buckets[stream][day].append((ts, row))
        return day

    def order(
        self,
        order_id: str,
        customer_json: str,
        state: str,
        currency: str,
        total: str,
        lines_json: str,
        created: str,
        updated_ts: int,
        tz: str,
        late: bool = False,
    ) -> int:
        """A storefront order version (JSONL)."""
        line = (
            f'{{"order_number": "{order_id}", "customer": {customer_json}, "state": "{state}", '
            f'"currency": "{currency}", "total": "{total}", "lines": {lines_json}, '
            f'"created_at": "{created}", "updated_at": "{self.clock.iso_local(updated_ts, tz)}"}}'
        )
        return self._put("shop/orders", "shop", updated_ts, late, None, line)

    def charge(
        self,
        charge_id: str,
        amount: int,
        currency: str,
        status: str,
        customer_id: str,
        order_id: str,
        created: int,
        updated: int,
        late: bool = False,
        day: int | None = None,
    ) -> int:
        """A PSP charge version (JSONL, minor units, lower-case currency, epoch seconds)."""
        line = (
            f'{{"id": "{charge_id}", "object": "charge", "amount": {amount}, "currency": "{currency.lower()}", '
            f'"status": "{status}", "customer": "{customer_id}", "metadata": {{"order_id": "{order_id}"}}, '
            f'"created": {created}, "updated": {updated}}}'
        )
        return self._put("psp/charges", "psp", updated, late, day, line)

    def refund(
        self,
        refund_id: str,
        amount: int,
        currency: str,
        charge_id: str,
        order_id: str,
        created: int,
        late: bool = False,
    ) -> int:
        """A PSP refund (JSONL); refunds are immutable, so `created` is also their update time."""
        line = (
            f'{{"id": "{refund_id}", "object": "refund", "amount": {amount}, "currency": "{currency.lower()}", '
            f'"charge": "{charge_id}", "status": "succeeded", "metadata": {{"order_id": "{order_id}"}}, '
            f'"created": {created}}}'
        )
        return self._put("psp/refunds", "psp", created, late, None, line)

    def document(
        self,
        doc_no: str,
        doc_type: str,
        order_id: str,
        customer_id: str,
        currency: str,
        net_cents: int,
        status: str,
        issued_ts: int,
        changed_ts: int,
        late: bool = False,
        day: int | None = None,
        copies: int = 1,
    ) -> int:
        """An ERP document version (CSV; credit notes negative; Berlin local times).

        `changed_ts` must already be out of the ambiguous fall-back hour (Clock.berlin_unambiguous).
        `copies` > 1 repeats the identical row in the same file (a duplicated export).
        """
        clock = self.clock
        line = (
            f"{doc_no},{doc_type},{order_id},{customer_id},{currency},{money(net_cents)},{status},"
            f"{clock.berlin_date_dmy(issued_ts)},{clock.berlin_wall(changed_ts)}"
        )
        result = self._put("erp/documents", "erp", changed_ts, late, day, line)
        for _ in range(copies - 1):
            self._put("erp/documents", "erp", changed_ts, late, result, line)
        return result

    def shipment(
        self,
        ref: str,
        order_id: str,
        kind: str,
        status: str,
        qty_lines: int,
        event_ts: int,
        modified_ts: int,
        late: bool = False,
    ) -> int:
        """A WMS shipment/activation version (Parquet row)."""
        row = (ref, order_id, kind, status, qty_lines, event_ts, modified_ts)
        return self._put("wms/shipments", "wms", modified_ts, late, None, row)

    def account(
        self, customer_id: str, segment: str, plan: str, owner: str, modified_ts: int, day: int | None = None
    ) -> int:
        """A CRM account version (CSV, ISO UTC with Z); empty segment/plan stay empty."""
        line = f"{customer_id},{segment},{plan},{owner},{self.clock.iso_z(modified_ts)}"
        return self._put("crm/accounts", "crm", modified_ts, False, day, line)
