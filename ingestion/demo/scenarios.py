"""What happens to each demo order: the clean flows, the look-alikes and the injected problems.

Every injected problem sits in its own order and produces exactly one ground-truth row; its first
day follows the rules doc: `max(day the order and the evidence are visible, due_day(anchor, grace))`
(anchorless rules: the visible day of the evidence). A problem fixed later ends the day before the
fixing record is visible.
"""

from __future__ import annotations

import random
from decimal import Decimal

from ingestion.demo.records import Sink
from ingestion.demo.rules import RuleSet
from ingestion.demo.steps import DAY, HOUR, Order, Paid, Steps

#: Injection kinds per diff type: (system, variant), cycled in this order (systems first).
INJECTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "missing_payment": (("psp", "never_paid"), ("psp", "paid_late")),
    "missing_invoice": (("erp", "never_invoiced"), ("erp", "invoiced_late")),
    "missing_fulfillment": (("wms", "never_shipped"), ("wms", "shipped_late")),
    "unpaid_fulfillment": (("wms", "shipped_never_paid"), ("wms", "activated_never_paid")),
    "amount_mismatch": (("psp", "charged_other_amount"), ("erp", "invoiced_other_amount")),
    "currency_mismatch": (
        ("erp", "invoiced_in_rated_currency"),
        ("psp", "charged_in_rated_currency"),
        ("erp", "invoiced_in_unrated_currency"),
        ("psp", "charged_in_unrated_currency"),
    ),
    "duplicate_record": (("psp", "retried_charge"), ("erp", "duplicate_key"), ("wms", "shipped_twice")),
    "orphan_record": (("psp", "orphan_charge"), ("erp", "orphan_invoice"), ("wms", "orphan_shipment")),
    "status_conflict": (
        ("psp", "cancelled_after_payment_not_refunded"),
        ("wms", "cancelled_but_shipped"),
        ("erp", "refund_without_credit_note"),
        ("erp", "credit_note_late"),
    ),
    "customer_mismatch": (("psp", "charged_other_customer"),),
    "missing_enrichment": (
        ("crm", "never_in_crm"),
        ("crm", "empty_segment"),
        ("crm", "empty_plan"),
        ("crm", "added_to_crm_late"),
        ("crm", "segment_filled_late"),
    ),
}

#: Look-alikes: cases near a rule's edge that must never show.
LOOKALIKES: tuple[str, ...] = (
    "payment_in_grace",
    "rounding_payment",
    "rounding_invoice",
    "partial_refund_credited",
    "split_payment",
    "split_payment_equal",
    "split_invoice",
    "fx_payment",
    "failed_then_succeeded",
    "pending_then_succeeded",
    "void_replaced_invoice",
    "multi_shipment",
    "shipment_cancelled_reshipped",
    "returned_refunded",
    "activation",
    "cancelled_before_payment",
    "cancelled_after_payment_refunded",
    "order_exported_after_payment",
)

#: Currencies the demo never configures rates for (the "no rate" variant of currency_mismatch).
UNRATED_CURRENCIES = ("SEK", "NOK", "DKK", "CHF", "PLN")
ORDER_CURRENCIES = ("EUR", "USD", "GBP")
SEGMENTS = ("smb", "mid_market", "enterprise")
PLANS = ("basic", "pro", "enterprise")
OWNERS = ("Anna Schmidt", "Ben Carter", "Chloe Dubois", "David Kim", "Eva Rossi", "Farid Haddad")


class Scenarios:
    """Runs one scenario per order through the Steps."""

    def __init__(self, steps: Steps, sink: Sink, rules: RuleSet, rng: random.Random) -> None:
        self.s = steps
        self.sink = sink
        self.rules = rules
        self.rng = rng
        self.n_customers = 1

    # ---- helpers -----------------------------------------------------------------------------

    def _first_state(self) -> str:
        r = self.rng.random()
        if r < 0.40:
            return "open"
        if r < 0.85:
            return "placed"
        return self.rng.choice(("Placed", "OPEN", "Open", "PLACED"))

    def _tol_cents(self, o: Order) -> int:
        return self.rules.tol_cents(o.total, o.line_count)

    def _rounding(self, o: Order) -> int | None:
        """An amount off by a tolerated number of cents (at the edge half of the time), or None."""
        limit = self._tol_cents(o)
        if limit < 1 or o.total <= limit:
            return None
        d = limit if self.rng.random() < 0.5 else self.rng.randint(1, limit)
        return o.total + d if self.rng.random() < 0.5 else o.total - d

    def _mismatch(self, o: Order) -> int:
        """An amount off by clearly more than the tolerance."""
        d = max(self._tol_cents(o) + 1, round(o.total * self.rng.uniform(0.05, 0.3)))
        return o.total - d if o.total - d >= 100 else o.total + d

    def fx_payment(self, o: Order) -> tuple[str, int] | None:
        """A charge in another currency converting back to the total within `tol` (so neither the
        currency rule nor the amount rule fires), or None when no configured rate allows one."""
        total = Decimal(o.total) / 100
        tol = self.rules.tol(total, o.line_count)
        options = []
        for cur in ORDER_CURRENCIES:
            rate = self.rules.rate(cur, o.cur)
            if cur == o.cur or not rate:
                continue
            guess = int((total / rate * 100).to_integral_value())
            best = None
            for cents in (guess - 1, guess, guess + 1):
                if cents < 1:
                    continue
                conv = self.rules.convert_cents(cents, cur, o.cur)
                assert conv is not None
                diff = abs(conv - total)
                if diff <= tol and (best is None or diff < best[0]):
                    best = (diff, cents)
            if best is not None:
                options.append((cur, best[1]))
        return self.rng.choice(options) if options else None

    def wrong_currency(self, o: Order, rated: bool) -> str:
        """A currency whose same number is clearly not the total (rated), or one without a rate."""
        total = Decimal(o.total) / 100
        if rated:
            fx_tol = self.rules.fx_tol(total, o.line_count)
            for cur in ORDER_CURRENCIES:
                rate = self.rules.rate(cur, o.cur)
                if cur != o.cur and rate is not None:
                    conv = self.rules.convert_cents(o.total, cur, o.cur)
                    if conv is not None and abs(conv - total) > fx_tol:
                        return cur
        for cur in UNRATED_CURRENCIES:
            if self.rules.rate(cur, o.cur) is None:
                return cur
        raise ValueError("rules.fx_rates configure every currency; no currency without a rate is left")

    def _partial_refund_amount(self, o: Order) -> int:
        tol = self._tol_cents(o)
        amount = self.rng.choice(o.lines)[3] if o.line_count > 1 else o.total // 3
        if amount >= o.total - tol or amount <= tol:
            amount = o.total // 3
        return amount

    def _placed_again(self, o: Order, paid: Paid, chance: float = 0.5) -> None:
        # Within 50 s: a cancellation placed as early as possible (60 s after payment) stays the latest.
        if self.rng.random() < chance:
            self.s.order_version(o, "placed", paid.t_end + self.rng.randint(5, 50))

    def account(self, cust: str, segment: str, plan: str, ts: int, day: int | None = None) -> int:
        """Write a CRM account version."""
        return self.sink.account(cust, segment, plan, self.rng.choice(OWNERS), ts, day)

    def _crm_time(self, day: int) -> int:
        return self.sink.start_ts + day * DAY + self.rng.randint(0, DAY - 1)

    # ---- clean orders and look-alikes -------------------------------------------------------

    def clean(self, o: Order, f: frozenset[str] | set[str]) -> set[str]:
        """An order that must never show a diff; `f` holds its realistic features (look-alikes).

        Returns:
            The features that were applied (some need e.g. a single payment or several lines).
        """
        s, rng = self.s, self.rng
        s.reset()
        order_late = "order_exported_after_payment" in f
        applied = {"order_exported_after_payment"} if order_late else set()
        s.order_version(o, self._first_state(), o.t0, late=order_late or s.late())
        if "cancelled_before_payment" in f:
            if rng.random() < 0.5:
                t_fail = o.t0 + rng.randint(30, 500)
                s.charge(o, s.new_charge_id(), o.total, o.cur, "failed", o.cust, t_fail, t_fail)
            due = s.due(o.t0, "missing_payment")
            _, vx = s.cancel(o, o.t0, rng.randint(600, 12 * HOUR), due)
            if vx > due and s.vo is not None:
                s.incidental(
                    o.oid,
                    "missing_payment",
                    "psp",
                    max(due, s.vo),
                    vx,
                    "cancellation visible after the payment grace",
                )
            s.check_orphan_grace(o)
            return applied | {"cancelled_before_payment"}
        cancel_after = "cancelled_after_payment_refunded" in f
        mode, amount, fx = "single", None, None
        if not cancel_after:
            if "split_payment" in f:
                mode = "split"
            elif "split_payment_equal" in f:
                mode = "split_equal"
            elif "failed_then_succeeded" in f:
                mode = "failed_first"
            elif "pending_then_succeeded" in f:
                mode = "pending_first"
            elif "payment_in_grace" in f:
                mode = "in_grace"
            elif "fx_payment" in f:
                fx = self.fx_payment(o)
                applied |= {"fx_payment"} if fx else set()
            elif "rounding_payment" in f:
                amount = self._rounding(o)
                applied |= {"rounding_payment"} if amount is not None else set()
            if mode == "split_equal":
                if any(o.total % n == 0 and o.total // n >= 100 for n in (2, 3)):
                    applied.add("split_payment_equal")
            elif mode != "single":
                applied.add(
                    {
                        "split": "split_payment",
                        "failed_first": "failed_then_succeeded",
                        "pending_first": "pending_then_succeeded",
                        "in_grace": "payment_in_grace",
                    }[mode]
                )
        paid = s.pay(o, mode, amount=amount, fx=fx)
        if not order_late:
            self._placed_again(o, paid)
        inv_mode, inv_amount = ("draft_first" if rng.random() < 0.2 else "single"), None
        if "split_invoice" in f:
            inv_mode = "split"
            applied.add("split_invoice")
        elif "void_replaced_invoice" in f:
            inv_mode = "void_replaced"
            applied.add("void_replaced_invoice")
        elif "rounding_invoice" in f:
            inv_amount = self._rounding(o)
            applied |= {"rounding_invoice"} if inv_amount is not None else set()
        t_inv, _ = s.invoice(o, paid, inv_mode, amount=inv_amount)
        if cancel_after:
            due_mf = s.due(paid.tc, "missing_fulfillment")
            tx, vx = s.cancel(o, paid.t_end, rng.randint(HOUR, 10 * HOUR), due_mf)
            if vx > due_mf and s.vo is not None:
                s.incidental(
                    o.oid,
                    "missing_fulfillment",
                    "wms",
                    max(due_mf, s.vo, paid.vis),
                    vx,
                    "cancellation after the SLA",
                )
            due_sc = s.due(tx, "status_conflict")
            _, v_r, _ = s.refund(o, paid, tx, o.total, t_invoice=t_inv, refund_due=due_sc)
            if v_r > due_sc:
                s.incidental(
                    o.oid, "status_conflict", "psp", max(due_sc, vx, paid.vis), v_r, "refund after its grace"
                )
            s.check_orphan_grace(o)
            return applied | {"cancelled_after_payment_refunded"}
        ful_mode = "ship"
        if "activation" in f:
            ful_mode = "activation"
        elif "multi_shipment" in f and o.line_count > 1:
            ful_mode = "multi"
        applied |= {"activation": {"activation"}, "multi": {"multi_shipment"}}.get(ful_mode, set())
        if "shipment_cancelled_reshipped" in f and ful_mode == "ship":
            s.cancelled_pick(o, paid.tc)
            applied.add("shipment_cancelled_reshipped")
        td, _, _ = s.fulfil(o, paid, ful_mode)
        if "partial_refund_credited" in f and paid.single:
            s.refund(o, paid, max(td, t_inv), self._partial_refund_amount(o), t_invoice=t_inv)
            applied.add("partial_refund_credited")
        elif "returned_refunded" in f and paid.single and ful_mode == "ship":
            s.return_shipment(o, paid, t_inv)
            applied.add("returned_refunded")
        s.check_orphan_grace(o)
        return applied

    # ---- injected problems -------------------------------------------------------------------

    def inject(self, o: Order, diff_type: str, system: str, variant: str) -> None:
        """An order with exactly one problem; writes its ground-truth row."""
        s, rng = self.s, self.rng
        s.reset()
        s.order_version(o, self._first_state(), o.t0)
        vo = s.vo
        assert vo is not None
        g = s.grace
        note = f"{variant}: "
        first: int
        fix: int | None = None

        def pay_invoice_ship(paid: Paid) -> int:
            self._placed_again(o, paid)
            s.invoice(o, paid)
            return s.fulfil(o, paid)[1]

        if diff_type == "missing_payment":
            if variant == "never_paid":
                if rng.random() < 0.5:
                    t_fail = o.t0 + rng.randint(60, HOUR)
                    s.charge(o, s.new_charge_id(), o.total, o.cur, "failed", o.cust, t_fail, t_fail)
                note += "order never paid"
            else:
                paid = s.pay(
                    o, delay=int(g["missing_payment"]) + rng.randint(26 * HOUR, 72 * HOUR), check_due=False
                )
                # a late-arriving payment can land after the shipment, which also ends the diff
                fix = min(paid.vis, pay_invoice_ship(paid))
                note += "payment captured after the grace window"
            first = max(vo, s.due(o.t0, "missing_payment"))
        elif diff_type == "missing_invoice":
            paid = s.pay(o)
            self._placed_again(o, paid)
            if variant == "invoiced_late":
                _, fix = s.invoice(
                    o,
                    paid,
                    delay=int(g["missing_invoice"]) + rng.randint(26 * HOUR, 60 * HOUR),
                    check_due=False,
                )
                note += "invoice posted after the grace window"
            else:
                note += "paid order never invoiced"
            s.fulfil(o, paid)
            first = max(vo, paid.vis, s.due(paid.tc, "missing_invoice"))
        elif diff_type == "missing_fulfillment":
            paid = s.pay(o)
            self._placed_again(o, paid)
            s.invoice(o, paid)
            if variant == "shipped_late":
                _, fix, _ = s.fulfil(
                    o,
                    paid,
                    delay=int(g["missing_fulfillment"]) + rng.randint(26 * HOUR, 60 * HOUR),
                    check_due=False,
                )
                note += "shipped after the SLA"
            else:
                note += "paid order never shipped"
            first = max(vo, paid.vis, s.due(paid.tc, "missing_fulfillment"))
        elif diff_type == "unpaid_fulfillment":
            mode = "activation" if variant == "activated_never_paid" else "ship"
            td, vf, _ = s.fulfil(o, None, mode, delay=rng.randint(20 * 60, 4 * HOUR), anchor=o.t0)
            first = max(vo, vf, s.due(td, "unpaid_fulfillment"))
            note += f"{'activated' if mode == 'activation' else 'shipped'}, never paid"
        elif diff_type == "amount_mismatch":
            if system == "psp":
                amount = self._mismatch(o)
                paid = s.pay(o, amount=amount)
                pay_invoice_ship(paid)
                first = max(vo, paid.vis, s.due(o.t0, "amount_mismatch"))
                note += f"charged {amount} instead of {o.total} minor units"
            else:
                paid = s.pay(o)
                self._placed_again(o, paid)
                amount = self._mismatch(o)
                _, v_inv = s.invoice(o, paid, amount=amount)
                s.fulfil(o, paid)
                first = max(vo, v_inv, s.due(o.t0, "amount_mismatch"))
                note += f"invoiced {amount} instead of {o.total} minor units"
        elif diff_type == "currency_mismatch":
            cur = self.wrong_currency(o, rated="unrated" not in variant)
            if system == "psp":
                paid = s.pay(o, currency=cur)
                pay_invoice_ship(paid)
                first = max(vo, paid.vis, s.due(o.t0, "currency_mismatch"))
                note += f"charged the order total in {cur} instead of {o.cur}"
            else:
                paid = s.pay(o)
                self._placed_again(o, paid)
                _, v_inv = s.invoice(o, paid, currency=cur)
                s.fulfil(o, paid)
                first = max(vo, v_inv, s.due(o.t0, "currency_mismatch"))
                note += f"invoiced the order total in {cur} instead of {o.cur}"
        elif diff_type == "duplicate_record":
            if system == "psp":
                paid = s.pay(o, "duplicate")
                pay_invoice_ship(paid)
                first = max(vo, paid.vis)
                note += "two succeeded charges of the full amount minutes apart"
            elif system == "erp":
                paid = s.pay(o)
                self._placed_again(o, paid)
                _, v_inv = s.invoice(o, paid, copies=2)
                s.fulfil(o, paid)
                first = v_inv
                note += "the same document row exported twice in one file"
            else:
                paid = s.pay(o)
                self._placed_again(o, paid)
                s.invoice(o, paid)
                _, _, v_all = s.fulfil(o, paid, "double")
                first = max(vo, v_all)
                note += "every line shipped twice"
        elif diff_type == "status_conflict":
            if system == "psp":
                paid = s.pay(o)
                self._placed_again(o, paid)
                s.invoice(o, paid)
                due_mf = s.due(paid.tc, "missing_fulfillment")
                tx, vx = s.cancel(o, paid.t_end, rng.randint(HOUR, 10 * HOUR), due_mf, late=False)
                first = max(vx, paid.vis, s.due(tx, "status_conflict"))
                note += "cancelled after payment, never refunded"
            elif system == "wms":
                td, vf, _ = s.fulfil(o, None, "ship", delay=rng.randint(20 * 60, 4 * HOUR), anchor=o.t0)
                due_uf = s.due(td, "unpaid_fulfillment")
                tx, vx = s.cancel(o, td, rng.randint(30 * 60, 4 * HOUR), due_uf, late=False)
                if vx > due_uf:
                    s.incidental(
                        o.oid,
                        "unpaid_fulfillment",
                        "wms",
                        max(due_uf, vo, vf),
                        vx,
                        "cancellation after the grace",
                    )
                first = max(vx, vf, s.due(tx, "status_conflict"))
                note += "cancelled after it was shipped"
            else:
                paid = s.pay(o)
                self._placed_again(o, paid)
                t_inv, _ = s.invoice(o, paid)
                td, _, _ = s.fulfil(o, paid)
                credit = "late" if variant == "credit_note_late" else "none"
                tr, v_r, fix = s.refund(
                    o, paid, max(td, t_inv), self._partial_refund_amount(o), credit=credit, t_invoice=t_inv
                )
                first = max(v_r, s.due(tr, "status_conflict"))
                note += (
                    "partial refund, credit note posted after the grace"
                    if fix
                    else "partial refund without credit note"
                )
        elif diff_type == "customer_mismatch":
            other = self._other_customer(o)
            paid = s.pay(o, customer=other)
            pay_invoice_ship(paid)
            first = max(vo, paid.vis)
            note += f"charge names customer {other}"
        elif diff_type == "missing_enrichment":
            due = s.due(o.t0, "missing_enrichment")
            late_ts = o.t0 + int(g["missing_enrichment"]) + rng.randint(26 * HOUR, 60 * HOUR)
            day_after = s.sink.day_of(o.t0) + 1
            seg, plan = rng.choice(SEGMENTS), rng.choice(PLANS)
            if variant == "empty_segment":
                self.account(o.cust, "", plan, self._crm_time(day_after))
                note += "CRM account without segment"
            elif variant == "empty_plan":
                self.account(o.cust, seg, "", self._crm_time(day_after))
                note += "CRM account without plan"
            elif variant == "added_to_crm_late":
                fix = self.account(o.cust, seg, plan, late_ts)
                note += "customer added to the CRM after the grace"
            elif variant == "segment_filled_late":
                self.account(o.cust, "", plan, self._crm_time(day_after))
                fix = self.account(o.cust, seg, plan, late_ts)
                note += "CRM segment filled in after the grace"
            else:
                note += "customer never in the CRM"
            pay_invoice_ship(s.pay(o))
            first = max(vo, due)
        else:  # pragma: no cover - guarded by the caller
            raise ValueError(f"unknown diff type {diff_type!r}")
        s.add_truth(o.oid, diff_type, system, first, fix, note.rstrip())
        s.check_orphan_grace(o)

    def _other_customer(self, o: Order) -> str:
        number = int(o.cust[4:])
        other = number + 1 if number < self.n_customers else 1
        if other == number:
            other = number + 1
        return f"CUS-{other:06d}"

    def orphan(self, system: str, variant: str, o: Order, ts: int) -> None:
        """A record pointing at an order number the storefront never had."""
        s = self.s
        s.reset()
        if system == "psp":
            v = s.charge(o, s.new_charge_id(), o.total, o.cur, "succeeded", o.cust, ts, ts)
        elif system == "erp":
            ts = s.clock.berlin_unambiguous(ts)
            v = s.document(o, s.new_doc_no("INV"), "INV", o.total, "POSTED", ts, ts)
        else:
            v = s.shipment(o, s.new_ship_ref("SHIP"), "SHIP", "DISPATCHED", self.rng.randint(1, 3), ts, ts)
        first = max(v, s.due(ts, "orphan_record"))
        s.add_truth(
            o.oid,
            "orphan_record",
            system,
            first,
            None,
            f"{variant}: record for an order number the storefront never had",
        )
