"""The parts of the `rules:` config section the demo generator needs: graces, tolerances, FX rates.

The arithmetic follows docs/reconciliation-rules.md (tol, fx_tol, due_day, round(amount * rate, 4)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ingestion.catalogue import DIFF_CATALOGUE

#: Every diff type the generator injects: the order-level types of the catalogue, in its order
#: (contract_violation and stale_source are about systems, raised by the contract and freshness checks).
DIFF_TYPES: tuple[str, ...] = tuple(d.name for d in DIFF_CATALOGUE if d.order_level)

_FOUR_PLACES = Decimal("0.0001")
_CENT = Decimal("0.01")


def _decimal(value: Any, key: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"rules.{key} must be a number, got {value!r}") from exc
    if not result.is_finite() or result < 0:
        raise ValueError(f"rules.{key} must be a finite number >= 0, got {value!r}")
    return result


@dataclass(frozen=True)
class RuleSet:
    """Grace windows (seconds), amount/FX tolerances and the FX rate table of one config."""

    grace_seconds: Mapping[str, float]
    absolute: Decimal
    relative: Decimal
    per_line: Decimal
    fx_tolerance: Decimal
    fx_rates: Mapping[tuple[str, str], Decimal]

    @classmethod
    def from_config(cls, rules: Mapping[str, Any]) -> RuleSet:
        """Build a RuleSet from the `rules:` section of a config.

        Args:
            rules: the plain dict of the `rules:` section (grace_hours, amount_tolerance,
                fx_tolerance, fx_rates; other keys are ignored).

        Returns:
            The parsed rule set. A diff type without a grace entry has a grace of 0.
        """
        if not isinstance(rules, Mapping):
            raise ValueError(
                f"rules must be a mapping (the `rules:` config section), got {type(rules).__name__}"
            )
        graces_raw = rules.get("grace_hours") or {}
        if not isinstance(graces_raw, Mapping):
            raise ValueError("rules.grace_hours must be a mapping of diff type -> hours")
        graces: dict[str, float] = {}
        for diff_type in DIFF_TYPES:
            hours = _decimal(graces_raw.get(diff_type, 0), f"grace_hours.{diff_type}")
            seconds = hours * 3600
            graces[diff_type] = int(seconds) if seconds == seconds.to_integral_value() else float(seconds)
        tolerance = rules.get("amount_tolerance") or {}
        if not isinstance(tolerance, Mapping):
            raise ValueError("rules.amount_tolerance must be a mapping (absolute, relative, per_line)")
        rates: dict[tuple[str, str], Decimal] = {}
        for i, entry in enumerate(rules.get("fx_rates") or []):
            if not isinstance(entry, Mapping) or not {"from", "to", "rate"} <= set(entry):
                raise ValueError(f"rules.fx_rates[{i}] must have keys from, to, rate")
            rates[(str(entry["from"]).upper(), str(entry["to"]).upper())] = _decimal(
                entry["rate"], f"fx_rates[{i}].rate"
            )
        return cls(
            grace_seconds=graces,
            absolute=_decimal(tolerance.get("absolute", 0), "amount_tolerance.absolute"),
            relative=_decimal(tolerance.get("relative", 0), "amount_tolerance.relative"),
            per_line=_decimal(tolerance.get("per_line", 0), "amount_tolerance.per_line"),
            fx_tolerance=_decimal(rules.get("fx_tolerance", 0), "fx_tolerance"),
            fx_rates=rates,
        )

    def tol(self, expected: Decimal, lines: int) -> Decimal:
        """`tol(expected, lines) = max(absolute, relative * |expected|, per_line * lines)`."""
        return max(self.absolute, self.relative * abs(expected), self.per_line * lines)

    def fx_tol(self, expected: Decimal, lines: int) -> Decimal:
        """`fx_tol(expected) = max(tol, fx_tolerance * |expected|)`."""
        return max(self.tol(expected, lines), self.fx_tolerance * abs(expected))

    def tol_cents(self, expected_cents: int, lines: int) -> int:
        """The largest whole number of cents that is still tolerated (may be 0)."""
        return int(
            (self.tol(Decimal(expected_cents) / 100, lines) / _CENT).to_integral_value(rounding="ROUND_FLOOR")
        )

    def rate(self, from_currency: str, to_currency: str) -> Decimal | None:
        """The configured rate for `from_currency -> to_currency` (1 for the same currency)."""
        if from_currency == to_currency:
            return Decimal(1)
        return self.fx_rates.get((from_currency, to_currency))

    def convert_cents(self, cents: int, from_currency: str, to_currency: str) -> Decimal | None:
        """`round(amount * rate, 4)` of an amount in minor units, or None when no rate is configured."""
        rate = self.rate(from_currency, to_currency)
        if rate is None:
            return None
        return (Decimal(cents) / 100 * rate).quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP)


def due_index(anchor_ts: float, grace_seconds: float, start_ts: int) -> int:
    """Day index (0 = first window day) of `due_day(anchor, grace) = date(anchor + grace)`."""
    return math.floor((anchor_ts + grace_seconds - start_ts) / 86400)
