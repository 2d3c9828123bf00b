"""The catalogue: the roles with their canonical fields, and the diff types, declared once.

Everything else reads it: the config's validation (`dagster_project/config/model.py`: which fields a
role may map, the default grace windows, which diff types a config may name), the generated staging
models and their docs (`dagster_project/dbt/dbt_codegen.py`), the dbt macros (the config's dbt vars
carry `catalogue`: `macros/role_columns.sql` reads the staged columns from there), contract
generation, onboarding, the demo generator, and the tables in docs/reconciliation-rules.md (a test
checks them against this module). It lives in `ingestion/`, the lowest layer, because connectors,
the demo generator and the runtime all import it and it imports nothing of ours.

Adding a diff type is one `DiffType` entry here plus its SQL rule
(`dbt_project/models/intermediate/diffs/`) and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["string", "decimal", "integer", "timestamp", "json_array_length", "boolean"]

# How each field type is staged (dbt), when it is staged at all: a nested list becomes records of its own.
STAGED_SQL_TYPE: dict[str, str] = {"string": "varchar", "decimal": "decimal(20,4)", "integer": "bigint",
                                   "timestamp": "timestamp", "boolean": "boolean"}


@dataclass(frozen=True)
class CanonicalField:
    """One canonical field of a role: how a source value is read, whether a stream must map it, and
    (for coded fields) the canonical words the rules know."""

    name: str
    type: FieldType
    required: bool
    description: str
    values: tuple[str, ...] = ()

    @property
    def staged(self) -> bool:
        """Whether staging has a column for it (a nested list is staged as records of their own)."""
        return self.type in STAGED_SQL_TYPE


def _f(name: str, type_: FieldType, required: bool, description: str, values: tuple[str, ...] = ()) -> CanonicalField:
    return CanonicalField(name, type_, required, description, values)


#: Canonical fields per role, in staged column order; the first field is the role's key. DESIGN.md section 3.
ROLE_CATALOGUE: dict[str, tuple[CanonicalField, ...]] = {
    "orders": (
        _f("order_id", "string", True, "Order identifier (the key of the canonical order)."),
        _f("customer_id", "string", False, "Customer the order belongs to."),
        _f("status", "string", True, "Order status: placed or cancelled (unmapped words kept lower-cased).",
           ("placed", "cancelled")),
        _f("currency", "string", True, "ISO 4217 currency of the order, upper case."),
        _f("total_amount", "decimal", True, "Order total in its currency, DECIMAL(20,4)."),
        _f("line_count", "integer", False, "Number of order lines."),
        _f("ordered_at", "timestamp", True, "When the order was placed (UTC)."),
        _f("updated_at", "timestamp", True, "When this version of the order was last changed in the source (UTC)."),
    ),
    "payments": (
        _f("payment_id", "string", True, "Payment (charge or refund) identifier."),
        _f("order_id", "string", True, "Order the payment belongs to."),
        _f("customer_id", "string", False, "Customer named on the payment."),
        _f("kind", "string", True, "charge or refund.", ("charge", "refund")),
        _f("status", "string", True, "succeeded, failed or pending (unmapped words kept lower-cased).",
           ("succeeded", "failed", "pending", "refunded", "partially_refunded")),
        _f("currency", "string", True, "ISO 4217 currency of the payment, upper case."),
        _f("amount", "decimal", True, "Payment amount, positive, in major units, DECIMAL(20,4)."),
        _f("refunded_amount", "decimal", False, "A charge's refunded total as the charge reports it (the "
           "amount-on-the-charge refund shape); null when refunds come as records of their own."),
        # refunds carried by the charge as a list of refund objects (docs/reconciliation-rules.md#refunds-and-credit-notes-three-shapes)
        _f("refunds", "json_array_length", False, "A charge's refunds as a nested list: staged as refund records."),
        _f("captured_at", "timestamp", False, "When the charge was captured or the refund made (UTC)."),
        _f("updated_at", "timestamp", True, "When this version of the payment was last changed in the source (UTC)."),
    ),
    "invoices": (
        _f("invoice_id", "string", True, "Billing document identifier."),
        _f("order_id", "string", True, "Order the document belongs to."),
        _f("customer_id", "string", False, "Customer named on the document."),
        _f("kind", "string", True, "invoice or credit_note.", ("invoice", "credit_note")),
        _f("status", "string", True, "posted, draft or void (unmapped words kept lower-cased).",
           ("draft", "posted", "void", "credited")),
        _f("currency", "string", True, "ISO 4217 currency of the document, upper case."),
        _f("amount", "decimal", True, "Document amount, positive, DECIMAL(20,4)."),
        _f("credited_amount", "decimal", False, "An invoice's credited total as the invoice reports it (the "
           "amount-on-the-invoice credit shape); null when credit notes come as documents of their own."),
        _f("credit_notes", "json_array_length", False,
           "An invoice's credit notes as a nested list: staged as credit-note documents."),
        _f("issued_at", "timestamp", False, "Document date (UTC)."),
        _f("updated_at", "timestamp", True, "When this version of the document was last changed in the source (UTC)."),
    ),
    "fulfillments": (
        _f("fulfillment_id", "string", True, "Shipment or activation identifier."),
        _f("order_id", "string", True, "Order fulfilled."),
        _f("kind", "string", False, "shipment or activation.", ("shipment", "activation")),
        _f("status", "string", True, "pending, shipped, delivered, activated, cancelled or returned.",
           ("pending", "shipped", "delivered", "activated", "cancelled", "returned")),
        _f("line_count", "integer", False, "Number of order lines this fulfillment covers."),
        _f("fulfilled_at", "timestamp", False, "When the goods shipped or the entitlement was activated (UTC)."),
        _f("updated_at", "timestamp", True,
           "When this version of the fulfillment was last changed in the source (UTC)."),
    ),
    "customers": (
        _f("customer_id", "string", True, "Customer identifier."),
        _f("segment", "string", False, "Customer segment."),
        _f("plan", "string", False, "Entitlement or plan."),
        _f("account_owner", "string", False, "Account owner in the CRM."),
        _f("updated_at", "timestamp", True,
           "When this version of the customer was last changed in the source (UTC)."),
    ),
}

ROLES: tuple[str, ...] = tuple(ROLE_CATALOGUE)

#: name -> (type, required) per role: what a stream of the role may map, and must.
ROLE_FIELDS: dict[str, dict[str, tuple[FieldType, bool]]] = {
    role: {f.name: (f.type, f.required) for f in fields} for role, fields in ROLE_CATALOGUE.items()}

#: The canonical words of the coded fields per role: a staged value outside them is an unmapped source
#: word (staging keeps it lower-cased); `fields.<f>.values` maps a source's own words onto them.
ROLE_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    role: {f.name: f.values for f in fields if f.values} for role, fields in ROLE_CATALOGUE.items()}

#: The staged columns per role, (name, SQL type), in order (lineage columns come first in every row).
ROLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    role: [(f.name, STAGED_SQL_TYPE[f.type]) for f in fields if f.staged] for role, fields in ROLE_CATALOGUE.items()}

# Fields that map a list nested in each record to records of their own (a charge's refunds, an
# invoice's credit notes): {from: <list>, id, amount, at[, status]}; and the total field of the same
# role that must not be mapped beside it (the two would count the same money twice).
NESTED_RECORD_FIELDS: dict[str, str] = {"refunds": "refunded_amount", "credit_notes": "credited_amount"}

@dataclass(frozen=True)
class DiffType:
    """One diff type: its human name, the roles it can be about, its default grace window.

    ``grace_hours`` is None for the system-level types the contract checks and the freshness rule
    raise (no grace applies); a config's `rules.grace_hours` overrides the others. ``roles`` are the
    roles it can name as its system (docs/reconciliation-rules.md#the-diff-catalogue says, rule by
    rule, which roles must be configured for it to fire). Severity and owner are the config's
    (`rules.severity`, `owners`): they are a team's choice, not a property of the type.
    """

    name: str
    title: str
    roles: tuple[str, ...]
    grace_hours: float | None

    @property
    def order_level(self) -> bool:
        """Whether it is about an order (the demo generator injects these; the others are about systems)."""
        return self.grace_hours is not None


_RECORDS = ("payments", "invoices", "fulfillments")

#: The diff catalogue, in its documented order.
DIFF_CATALOGUE: tuple[DiffType, ...] = (
    DiffType("missing_payment", "Missing payment", ("payments",), 24.0),
    DiffType("missing_invoice", "Missing invoice", ("invoices",), 48.0),
    DiffType("missing_fulfillment", "Missing fulfillment", ("fulfillments",), 72.0),
    DiffType("unpaid_fulfillment", "Fulfilled but unpaid", ("fulfillments",), 24.0),
    DiffType("amount_mismatch", "Amount mismatch", ("payments", "invoices"), 0.0),
    DiffType("currency_mismatch", "Currency mismatch", ("payments", "invoices"), 0.0),
    DiffType("duplicate_record", "Duplicate record", ROLES, 0.0),
    DiffType("orphan_record", "Record without an order", _RECORDS, 24.0),
    DiffType("status_conflict", "Status conflict", _RECORDS, 48.0),
    DiffType("customer_mismatch", "Customer mismatch", ("payments", "invoices"), 0.0),
    DiffType("missing_enrichment", "Missing customer data", ("customers",), 24.0),
    DiffType("contract_violation", "Data contract violation", ROLES, None),
    DiffType("stale_source", "Stale source system", ROLES, None),
)

DIFF_TYPES: tuple[str, ...] = tuple(d.name for d in DIFF_CATALOGUE)
DIFF_BY_NAME: dict[str, DiffType] = {d.name: d for d in DIFF_CATALOGUE}

#: The default grace window per order-level diff type, in hours.
DEFAULT_GRACE_HOURS: dict[str, float] = {
    d.name: d.grace_hours for d in DIFF_CATALOGUE if d.grace_hours is not None}


def diff_title(diff_type: str) -> str:
    """The human name of a diff type (the type's own name when it is not in the catalogue)."""
    known = DIFF_BY_NAME.get(diff_type)
    return known.title if known else diff_type.replace("_", " ").capitalize()


def markdown_table() -> str:
    """The diff types as the table in docs/reconciliation-rules.md#diff-types (a test keeps the two equal)."""
    rows = ["| diff_type | shown as | default grace (h) | can be about |", "|---|---|---|---|"]
    for d in DIFF_CATALOGUE:
        grace = "–" if d.grace_hours is None else f"{d.grace_hours:g}"
        rows.append(f"| {d.name} | {d.title} | {grace} | {', '.join(d.roles)} |")
    return "\n".join(rows)


def dbt_vars() -> dict[str, object]:
    """What dbt reads of the catalogue (`var('recon').catalogue`): the staged columns per role.

    Only the staging macros read it; the rules read the config's `roles` (which are configured).
    """
    return {"role_columns": {role: [list(c) for c in cols] for role, cols in ROLE_COLUMNS.items()}}
