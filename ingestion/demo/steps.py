"""The building blocks of an order's life in the demo data: pay, invoice, fulfil, refund, cancel.

Each step writes its records through the Sink and returns the visible day of the record that matters
to a graced rule. Steps place that record so it is visible no later than the rule's due day
(`due_day(anchor, grace)` of docs/reconciliation-rules.md): first as planned, then without the
late-arrival delay, then as early as possible. Should even that not fit (only possible with very
short grace windows, e.g. across the ERP outage), the diff it causes is written to the ground truth
as an "incidental" row instead of going unrecorded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ingestion.demo.records import Sink, money
from ingestion.demo.rules import RuleSet, due_index
from ingestion.demo.timefmt import Clock

HOUR = 3600
DAY = 86400


@dataclass(slots=True)
class Order:
    """One storefront order and what the steps need to know about it."""

    oid: str
    cust: str
    cust_json: str
    cur: str
    tz: str
    lines: list[tuple[str, int, int, int]]  # sku, qty, unit cents, line cents
    total: int
    t0: int
    created: str = ""
    lines_json: str = ""

    @property
    def line_count(self) -> int:
        """Number of order lines."""
        return len(self.lines)


@dataclass(slots=True)
class Paid:
    """Result of a payment step."""

    tc: int  # first_captured_at (created of the first succeeded charge)
    vis: int  # day every succeeded charge is visible (they share a file)
    charge_id: str
    t_end: int  # time of the last payment event
    single: bool  # one succeeded charge in the order currency, refundable


@dataclass(slots=True)
class Truth:
    """A ground-truth row in day indexes; `last` None = still showing at the window end."""

    order_id: str
    diff_type: str
    system: str
    first: int
    last: int | None
    injected: str


def _scramble(n: int) -> str:
    # Multiplying by an odd constant modulo 2**40 is a bijection: unique, random-looking ids.
    return f"{(n * 0x9E3779B1) % (1 << 40):010x}"


class Steps:
    """Writes the records of one order after another and collects ground-truth rows."""

    def __init__(
        self, sink: Sink, rules: RuleSet, rng: random.Random, clock: Clock, late_rate: float
    ) -> None:
        self.sink = sink
        self.rules = rules
        self.rng = rng
        self.clock = clock
        self.late_rate = late_rate
        self.grace = rules.grace_seconds
        self.start_ts = sink.start_ts
        self.truth: list[Truth] = []
        self.last_shipment: tuple[str, int, int] = ("", 0, 0)
        self._n_charge = 0
        self._n_refund = 0
        self._n_doc = 0
        self._n_ship = 0
        self.reset()

    # ---- bookkeeping -------------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new order."""
        self.vo: int | None = None  # first visible day of a live order version
        self.vany: int | None = None  # first visible day of any order version
        self.rel: dict[str, tuple[int, int]] = {}  # system -> (min updated ts, min visible day) of rows

    def due(self, anchor: int, diff_type: str) -> int:
        """Day index of due_day(anchor, grace of diff_type)."""
        return due_index(anchor, self.grace[diff_type], self.start_ts)

    def late(self) -> bool:
        """Whether a record arrives a day late (a random draw)."""
        return self.rng.random() < self.late_rate

    def add_truth(
        self, oid: str, diff_type: str, system: str, first: int, fix: int | None, note: str
    ) -> None:
        """Record a diff showing from day `first` until the day before `fix` (the fixing record's day)."""
        last = None if fix is None or fix > self.sink.last else fix - 1
        if first > self.sink.last or (last is not None and last < first):
            return
        self.truth.append(Truth(oid, diff_type, system, first, last, note))

    def incidental(self, oid: str, diff_type: str, system: str, first: int, fix: int, what: str) -> None:
        """Record a diff the data causes although no problem was injected (see module docstring)."""
        if fix > first:
            self.add_truth(oid, diff_type, system, first, fix, f"incidental: {what}")

    def place(
        self,
        system: str,
        anchor: int,
        delay: int,
        due: int,
        late: bool,
        min_delay: int = 60,
        earliest: int | None = None,
    ) -> tuple[int, int, bool]:
        """Pick the update time of a record that must be visible by day `due`.

        Returns:
            (time, visible day, late flag).
        """
        adjust = self.clock.berlin_unambiguous if system == "erp" else (lambda x: x)
        vis = self.sink.vis
        t = adjust(anchor + delay)
        v = vis(system, t, late)
        if v > due and late:
            late = False
            v = vis(system, t, late)
        if v > due:
            t = adjust(anchor + min_delay)
            v = vis(system, t, late)
        if v > due and earliest is not None:
            t = adjust(earliest)
            v = vis(system, t, late)
        return t, v, late

    def _rel(self, system: str, ts: int, v: int) -> None:
        old = self.rel.get(system)
        if old is None:
            self.rel[system] = (ts, v)
        else:
            self.rel[system] = (min(old[0], ts), min(old[1], v))

    # ---- records -----------------------------------------------------------------------------

    def order_version(self, o: Order, state: str, ts: int, late: bool = False) -> int:
        """Write a version of the order; track the first day a live version is visible."""
        v = self.sink.order(
            o.oid, o.cust_json, state, o.cur, money(o.total), o.lines_json, o.created, ts, o.tz, late
        )
        if state.lower() not in ("cancelled", "canceled") and (self.vo is None or v < self.vo):
            self.vo = v
        if self.vany is None or v < self.vany:
            self.vany = v
        return v

    def new_charge_id(self) -> str:
        """A fresh PSP charge id."""
        self._n_charge += 1
        return "ch_" + _scramble(self._n_charge)

    def charge(
        self,
        o: Order,
        cid: str,
        amount: int,
        cur: str,
        status: str,
        cust: str,
        created: int,
        updated: int,
        late: bool = False,
        day: int | None = None,
    ) -> int:
        """Write a charge version of the order."""
        v = self.sink.charge(cid, amount, cur, status, cust, o.oid, created, updated, late, day)
        self._rel("psp", updated, v)
        return v

    def refund_record(self, o: Order, amount: int, cur: str, cid: str, ts: int, late: bool = False) -> int:
        """Write a refund of the order."""
        self._n_refund += 1
        v = self.sink.refund("re_" + _scramble(self._n_refund), amount, cur, cid, o.oid, ts, late)
        self._rel("psp", ts, v)
        return v

    def new_doc_no(self, doc_type: str) -> str:
        """A fresh ERP document number."""
        self._n_doc += 1
        return f"{doc_type}-{self._n_doc:08d}"

    def document(
        self,
        o: Order,
        doc_no: str,
        doc_type: str,
        net: int,
        status: str,
        issued: int,
        changed: int,
        late: bool = False,
        day: int | None = None,
        cur: str | None = None,
        copies: int = 1,
    ) -> int:
        """Write an ERP document version of the order (`changed` already unambiguous in Berlin)."""
        v = self.sink.document(
            doc_no, doc_type, o.oid, o.cust, cur or o.cur, net, status, issued, changed, late, day, copies
        )
        self._rel("erp", changed, v)
        return v

    def new_ship_ref(self, kind: str) -> str:
        """A fresh WMS shipment/activation reference."""
        self._n_ship += 1
        return f"{'SHP' if kind == 'SHIP' else 'ACT'}-{self._n_ship:08d}"

    def shipment(
        self,
        o: Order,
        ref: str,
        kind: str,
        status: str,
        qty: int,
        event: int,
        modified: int,
        late: bool = False,
    ) -> int:
        """Write a WMS version of the order's shipment or activation."""
        v = self.sink.shipment(ref, o.oid, kind, status, qty, event, modified, late)
        self._rel("wms", modified, v)
        return v

    # ---- steps -------------------------------------------------------------------------------

    def pay(
        self,
        o: Order,
        mode: str = "single",
        *,
        delay: int | None = None,
        amount: int | None = None,
        currency: str | None = None,
        customer: str | None = None,
        check_due: bool = True,
        fx: tuple[str, int] | None = None,
    ) -> Paid:
        """Capture the order's payment.

        Modes: single, pending_first, failed_first, split, split_equal, fx (needs `fx`), in_grace
        (hours later, late-arriving when the grace allows), duplicate (a retried full charge).
        """
        rng = self.rng
        cust = customer or o.cust
        cur = currency or o.cur
        if fx is not None:
            cur, amount = fx
        amount = o.total if amount is None else amount
        if mode in ("split", "split_equal"):
            parts = self._split_amount(amount, mode == "split_equal")
        elif mode == "duplicate":
            parts = [amount, amount]
        else:
            parts = [amount]
        gaps = [rng.randint(20, 600) for _ in parts[1:]]
        span = sum(gaps)
        late = self.late()
        if delay is None:
            if mode == "in_grace":
                delay = rng.randint(3 * HOUR, 20 * HOUR)
                late = True
            else:
                delay = rng.randint(60, 90 * 60)
        settle = rng.randint(5, 300) if mode == "pending_first" else 0
        due = self.due(o.t0, "missing_payment")
        if check_due:
            t_last, v, late = self.place(
                "psp", o.t0, delay + span + settle, due, late, min_delay=60 + span + settle
            )
        else:
            t_last = o.t0 + delay + span + settle
            v = self.sink.vis("psp", t_last, late)
        t = t_last - span - settle
        if mode == "failed_first":
            t_fail = max(o.t0 + 1, t - rng.randint(30, 600))
            if t_fail < t:
                self.charge(o, self.new_charge_id(), amount, cur, "failed", cust, t_fail, t_fail)
        first_id = ""
        created = t
        for i, part in enumerate(parts):
            cid = self.new_charge_id()
            first_id = first_id or cid
            if mode == "pending_first":
                self.charge(o, cid, part, cur, "pending", cust, created, created)
                self.charge(o, cid, part, cur, "succeeded", cust, created, created + settle, late, v)
            else:
                self.charge(o, cid, part, cur, "succeeded", cust, created, created, late, v)
            if i < len(gaps):
                created += gaps[i]
        if check_due and v > due and self.vo is not None:
            self.incidental(
                o.oid, "missing_payment", "psp", max(due, self.vo), v, "payment visible after its grace"
            )
        single = len(parts) == 1 and cur == o.cur and amount == o.total and cust == o.cust
        return Paid(tc=t, vis=v, charge_id=first_id, t_end=t_last, single=single)

    def _split_amount(self, amount: int, equal: bool) -> list[int]:
        rng = self.rng
        if equal:
            for n in (2, 3):
                if amount % n == 0 and amount // n >= 100:
                    return [amount // n] * n
        if amount < 200:
            return [amount]
        n = rng.choice((2, 2, 3)) if amount >= 300 else 2
        cuts = sorted(rng.sample(range(1, amount), n - 1))
        bounds = [0, *cuts, amount]
        return [bounds[i + 1] - bounds[i] for i in range(n)]

    def invoice(
        self,
        o: Order,
        paid: Paid,
        mode: str = "single",
        *,
        delay: int | None = None,
        amount: int | None = None,
        currency: str | None = None,
        copies: int = 1,
        check_due: bool = True,
    ) -> tuple[int, int]:
        """Post the order's invoice(s). Modes: single, draft_first, split, void_replaced.

        Returns:
            (time of the last posted invoice, day the posted invoices are visible).
        """
        rng = self.rng
        amount = o.total if amount is None else amount
        if delay is None:
            delay = rng.randint(300, 12 * HOUR)
        parts = [amount]
        if mode == "split" and amount >= 200:
            cut = rng.randint(1, amount - 1)
            parts = [cut, amount - cut]
        span = 60 * (len(parts) - 1)
        due = self.due(paid.tc, "missing_invoice")
        late = self.late() and copies == 1
        if check_due:
            t, v, late = self.place(
                "erp", paid.tc, delay + span, due, late, min_delay=60 + span, earliest=o.t0 + 60 + span
            )
        else:
            t = self.clock.berlin_unambiguous(paid.tc + delay + span)
            v = self.sink.vis("erp", t, late)
        adjust = self.clock.berlin_unambiguous
        if mode == "void_replaced":
            # never before the order: a document visible before a late order must stay inside the orphan grace
            t_void = adjust(max(o.t0 + 1, t - rng.randint(3 * HOUR, 6 * HOUR)))
            wrong = amount + rng.randint(100, 2000)
            self.document(o, self.new_doc_no("INV"), "INV", wrong, "VOID", t_void, t_void)
        for i, part in enumerate(parts):
            doc_no = self.new_doc_no("INV")
            t_doc = adjust(t - span + 60 * i)
            issued = t_doc
            if mode == "draft_first":
                t_draft = adjust(t_doc - rng.randint(3 * HOUR, 6 * HOUR))
                if t_draft > o.t0:
                    issued = t_draft
                    self.document(o, doc_no, "INV", part, "DRAFT", issued, t_draft)
            self.document(o, doc_no, "INV", part, "POSTED", issued, t_doc, late, v, currency, copies)
        if check_due and v > due and self.vo is not None:
            self.incidental(
                o.oid,
                "missing_invoice",
                "erp",
                max(due, self.vo, paid.vis),
                v,
                "invoice visible after its grace",
            )
        return t, v

    def fulfil(
        self,
        o: Order,
        paid: Paid | None,
        mode: str = "ship",
        *,
        delay: int | None = None,
        check_due: bool = True,
        anchor: int | None = None,
    ) -> tuple[int, int, int]:
        """Ship or activate the order. Modes: ship, multi (lines over 2-3 shipments), activation,
        double (two shipments of every line).

        Returns:
            (first fulfilled_at, day the first active version is visible, day all first shipments are).
        """
        rng = self.rng
        base = paid.tc if paid is not None else (anchor if anchor is not None else o.t0)
        if delay is None:
            delay = rng.randint(30, 1800) if mode == "activation" else rng.randint(2 * HOUR, 30 * HOUR)
        late = self.late()
        due = None
        if check_due:
            # Paid: the fulfilment SLA. Unpaid: it must show before missing_payment would.
            due = (
                self.due(paid.tc, "missing_fulfillment")
                if paid is not None
                else self.due(o.t0, "missing_payment")
            )
            td, v, late = self.place("wms", base, delay, due, late)
        else:
            td = base + delay
            v = self.sink.vis("wms", td, late)
        n = o.line_count
        v_all = v
        if mode == "activation":
            self.shipment(o, self.new_ship_ref("ACT"), "ACT", "ACTIVE", n, td, td, late)
        elif mode == "ship":
            self._ship(o, n, td, late, base)
        elif mode == "double":
            self._ship(o, n, td, late, base)
            td2 = td + rng.randint(600, 6 * HOUR)
            v_all = max(v, self._ship(o, n, td2, False, td + 1))
        else:  # multi
            k = min(n, rng.choice((2, 2, 3)))
            cuts = sorted(rng.sample(range(1, n), k - 1)) if k > 1 else []
            bounds = [0, *cuts, n]
            t_next = td
            for i in range(k):
                qty = bounds[i + 1] - bounds[i]
                self._ship(o, qty, t_next, late if i == 0 else False, base if i == 0 else t_next - 1)
                t_next += rng.randint(6 * HOUR, 48 * HOUR)
        if due is not None and v > due and self.vo is not None:
            if paid is not None:
                self.incidental(
                    o.oid,
                    "missing_fulfillment",
                    "wms",
                    max(due, self.vo, paid.vis),
                    v,
                    "fulfilment visible after its grace",
                )
            else:
                self.incidental(
                    o.oid,
                    "missing_payment",
                    "psp",
                    max(due, self.vo),
                    v,
                    "fulfilment visible after the payment grace",
                )
        if paid is not None and self.vo is not None:
            due_uf = self.due(td, "unpaid_fulfillment")
            if paid.vis > due_uf:
                self.incidental(
                    o.oid,
                    "unpaid_fulfillment",
                    "wms",
                    max(due_uf, self.vo, v),
                    paid.vis,
                    "payment visible after the shipment's grace",
                )
        return td, v, v_all

    def _ship(self, o: Order, qty: int, td: int, late: bool, not_before: int) -> int:
        """A shipment PICKED -> DISPATCHED -> DELIVERED; fulfilled_at stays the dispatch time."""
        rng = self.rng
        ref = self.new_ship_ref("SHIP")
        tp = td - rng.randint(30 * 60, 10 * HOUR)
        if tp > not_before:
            self.shipment(o, ref, "SHIP", "PICKED", qty, tp, tp)
        v = self.shipment(o, ref, "SHIP", "DISPATCHED", qty, td, td, late)
        tdl = td + rng.randint(20 * HOUR, 72 * HOUR)
        self.shipment(o, ref, "SHIP", "DELIVERED", qty, td, tdl)
        self.last_shipment = (ref, qty, tdl)
        return v

    def cancelled_pick(self, o: Order, after: int) -> None:
        """A shipment picked and then cancelled (never active), before the real one."""
        ref = self.new_ship_ref("SHIP")
        tp = after + self.rng.randint(60, 1800)
        self.shipment(o, ref, "SHIP", "PICKED", o.line_count, tp, tp)
        self.shipment(o, ref, "SHIP", "CANCELLED", o.line_count, tp, tp + self.rng.randint(60, 1800))

    def return_shipment(self, o: Order, paid: Paid, t_invoice: int) -> None:
        """The customer sends everything back: full refund first, then RETURNED, then a credit note.

        The refund must be visible no later than the return, or the paid order would count as
        unfulfilled (missing_fulfillment is long due by then); so it is never late-arriving.
        """
        ref, qty, tdl = self.last_shipment
        tr, v_r, _ = self.refund(o, paid, tdl, o.total, t_invoice=t_invoice, late=False)
        t_ret = tr + self.rng.randint(HOUR, 6 * HOUR)
        v_ret = self.shipment(o, ref, "SHIP", "RETURNED", qty, t_ret, t_ret)
        assert v_r <= v_ret

    def refund(
        self,
        o: Order,
        paid: Paid,
        after: int,
        amount: int,
        *,
        credit: str = "in_time",
        delay: int | None = None,
        t_invoice: int | None = None,
        refund_due: int | None = None,
        late: bool | None = None,
    ) -> tuple[int, int, int | None]:
        """Refund part or all of the order, with a credit note in time, late ("late") or never ("none").

        Returns:
            (refund time, refund visible day, credit note visible day or None).
        """
        rng = self.rng
        if refund_due is None:
            tr = after + (rng.randint(DAY, 3 * DAY) if delay is None else delay)
            late = self.late() if late is None else late
        else:
            tr, _, late = self.place(
                "psp", after, rng.randint(60, 2 * HOUR) if delay is None else delay, refund_due, self.late()
            )
        v_r = self.refund_record(o, amount, o.cur, paid.charge_id, tr, late)
        if credit == "none":
            return tr, v_r, None
        due = self.due(tr, "status_conflict")
        if credit == "late":
            t_cn = self.clock.berlin_unambiguous(
                tr + int(self.grace["status_conflict"]) + rng.randint(26 * HOUR, 60 * HOUR)
            )
            v_cn = self.sink.vis("erp", t_cn)
        else:
            earliest = max(tr - 2 * HOUR, (t_invoice or o.t0) + 60)
            t_cn, v_cn, late = self.place(
                "erp", tr, rng.randint(HOUR, 12 * HOUR), due, self.late(), earliest=earliest
            )
        self.document(o, self.new_doc_no("CRN"), "CRN", -amount, "POSTED", t_cn, t_cn, False, v_cn)
        if credit != "late" and v_cn > due:
            self.incidental(
                o.oid, "status_conflict", "erp", max(due, v_r), v_cn, "credit note visible after its grace"
            )
        return tr, v_r, v_cn

    def cancel(
        self, o: Order, anchor: int, delay: int, due: int | None, late: bool | None = None
    ) -> tuple[int, int]:
        """Write the order's cancelled version, visible by day `due` when given.

        Returns:
            (cancelled_at, visible day).
        """
        if late is None:
            late = self.late()
        if due is None:
            t = anchor + delay
            v = self.sink.vis("shop", t, late)
        else:
            t, v, late = self.place("shop", anchor, delay, due, late)
        state = "cancelled" if self.rng.random() < 0.8 else self.rng.choice(("Cancelled", "canceled"))
        self.order_version(o, state, t, late)
        return t, v

    def check_orphan_grace(self, o: Order) -> None:
        """A record written before its order is visible must not outlive the orphan grace."""
        if self.vany is None:
            return
        for system in sorted(self.rel):
            ts, v = self.rel[system]
            due = self.due(ts, "orphan_record")
            if self.vany > due:
                self.incidental(
                    o.oid,
                    "orphan_record",
                    system,
                    max(due, v),
                    self.vany,
                    "order visible after the orphan grace",
                )
