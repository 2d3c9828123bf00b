"""The contract of one landed stream, derived from the config: a list of :class:`Rule`.

Pure functions, no database. Each rule becomes one Great Expectations expectation (see
``suites.py``); a *row-level* rule also carries ``violation_sql``, the query that selects the rows
breaking it (``_airbyte_raw_id``, ``failing_value``) from ``{batch}``. GX runs that same text for
``UnexpectedRowsExpectation``s, and the quarantine step runs it to keep the rows aside, so what GX
counts and what is quarantined cannot drift apart (the tests assert both counts agree).

Where a rule's numbers come from:
- required columns: every source column a canonical field maps ``from`` (the part before the first
  ``.`` for a JSON path), plus the primary key and cursor field;
- accepted types: by the file format and the canonical field type (CSV lands every column as VARCHAR);
- accepted values: the keys of the field's ``values`` mapping (case-insensitive, as staging reads them);
- bounds, clock skew, freshness and severity: defaults below, overridable per suite in
  ``expectations/overrides.yml`` (see :func:`load_overrides`).

Severity: ``blocking`` where going on would be meaningless (a mapped column missing or retyped out of
its contract, a key column mostly null); ``warning`` otherwise (bad rows are quarantined and the run
goes on without them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dagster_project.config.model import FieldSpec, ReconConfig
from ingestion.catalogue import ROLE_FIELDS

Severity = Literal["blocking", "warning"]

RAW_ID = "_airbyte_raw_id"
EXTRACTED_AT = "_airbyte_extracted_at"
FILE_MODIFIED = "_ab_source_file_last_modified"

DEFAULTS: dict[str, Any] = {
    "amount_max": 1_000_000,  # in major units; a minor-unit stream multiplies by 100
    "future_tolerance_minutes": 60,  # a record may be stamped up to this much after it was extracted
    "key_mostly_present": 0.5,  # below this share of non-null keys the stream blocks
    "min_rows": 1,
    "freshness_hours": None,  # None: the system's freshness_hours
    "disable": [],
    "severity": {},
    "extra_values": {},
    "expectations": [],  # GX expectations of your own, appended to the generated ones
}

# ISO 4217 active codes (2024), plus XCG (2025). Upper-cased before comparison.
ISO_CURRENCIES: tuple[str, ...] = tuple(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
    GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
    KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK
    NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF
    XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL""".split()  # noqa: SIM905 - readable as a block
)

_INTEGER_TYPES = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT"]
_TIMESTAMP_TYPES = ["TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
                    "DATE"]
_DECIMAL_TYPES = ["DOUBLE", "FLOAT", *_INTEGER_TYPES, *[f"DECIMAL({p},{s})" for p in (9, 18, 38) for s in
                                                        range(0, 7)]]
# A regular expression for ISO-8601 text ending in a UTC offset (the same as dbt's iso_offset_regex).
_ISO_OFFSET = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?[[:space:]]*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"


@dataclass(frozen=True)
class Rule:
    """One clause of a stream's contract.

    Attributes:
        rule_id: stable id, ``<check>`` or ``<check>:<column>``; overrides refer to it.
        check: the kind of check (``column_exists``, ``key_not_null``, ``amount_in_bounds``, ...).
        column: the source column the rule is about (None for table-level rules).
        severity: ``blocking`` or ``warning``.
        expectation_type: the GX expectation class name.
        kwargs: the expectation's arguments.
        description: what the rule means, in one line (shown in Data Docs and the CLI).
        violation_sql: for row-level rules, ``select _airbyte_raw_id, failing_value from {batch} ...``
            in ``str.format`` syntax (literal braces doubled); None for table-level rules.
        quarantine: whether the rows breaking it are quarantined. False for a key repeated within a
            sync: that is a business finding (the ``duplicate_record`` diff, e.g. a document exported
            twice), which reconciliation can only see if the rows stay in.
    """

    rule_id: str
    check: str
    column: str | None
    severity: Severity
    expectation_type: str
    kwargs: dict[str, Any]
    description: str
    violation_sql: str | None = None
    quarantine: bool = True

    @property
    def row_level(self) -> bool:
        return self.violation_sql is not None


@dataclass(frozen=True)
class StreamContract:
    """Every rule of one stream, plus what the drift check and the quarantine need to know."""

    system: str
    stream: str
    role: str
    primary_key: list[str]
    cursor_field: str | None
    order_id_sql: str | None
    accepted_types: dict[str, list[str]]
    rules: list[Rule] = field(default_factory=list)
    extra_expectations: list[dict[str, Any]] = field(default_factory=list)  # overrides.yml `expectations`

    @property
    def suite_name(self) -> str:
        return suite_name(self.system, self.stream)

    @property
    def table(self) -> str:
        return f"raw_{self.system}.{self.stream}"

    @property
    def required_columns(self) -> list[str]:
        return list(self.accepted_types)


def suite_name(system: str, stream: str) -> str:
    """``<system>__<stream>__contract`` (STYLE.md)."""
    return f"{system}__{stream}__contract"


def q(name: str) -> str:
    """Quote an identifier (values are never pasted; identifiers come from the validated config)."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A SQL string literal for a config-derived constant."""
    return "'" + str(value).replace("'", "''") + "'"


def _braces(sql: str) -> str:
    """Escape literal braces for the ``{batch}`` template (GX formats it with ``str.format``)."""
    return sql.replace("{", "{{").replace("}", "}}")


def text_sql(source: str, alias: str | None = None) -> str:
    """The value at ``col`` or ``col.path.to.key`` as trimmed text, NULL when empty.

    Args:
        source: a field's ``from`` (a column, or ``col.key`` for a JSON path inside it).
        alias: the table alias to qualify the column with (none by default).

    Returns:
        A SQL expression.
    """
    column, *path = source.split(".")
    ref = f"{alias}.{q(column)}" if alias else q(column)
    if path:
        json_path = "$" + "".join(f'."{key}"' for key in path)
        raw = f"json_extract_string({ref}, {lit(json_path)})"
    else:
        raw = f"cast({ref} as varchar)"
    return f"nullif(trim({raw}), '')"


_text = text_sql


def _number(source: str) -> str:
    """The value as a DOUBLE, NULL when not a number. Plausibility checks need no exact decimals, and
    DuckDB casts a number column (or trims and parses text) without a detour through VARCHAR, which
    keeps a 10M-row scan well under a second."""
    column, *path = source.split(".")
    if path:
        return f"try_cast({_text(source)} as double)"
    return f"try_cast({q(column)} as double)"


def _timestamp(source: str, spec: FieldSpec) -> str:
    """Parse like dbt's ``parse_timestamp`` (UTC, NULL when unparseable); time zone shifts do not
    matter for "parseable" and move "future" by hours at most, which the clock tolerance covers."""
    text = _text(source)
    if not spec.formats:
        return (f"case when regexp_matches({text}, {lit(_ISO_OFFSET)}) "
                f"then timezone('UTC', try_cast({text} as timestamptz)) else try_cast({text} as timestamp) end")
    parts = []
    for fmt in spec.formats:
        if fmt == "epoch_seconds":
            parts.append(f"timezone('UTC', to_timestamp({_number(source)}))")
        elif fmt == "epoch_millis":
            parts.append(f"epoch_ms(cast({_number(source)} as bigint))")
        elif "%z" in fmt or "%Z" in fmt:
            parts.append(f"timezone('UTC', try_strptime({text}, {lit(fmt)}))")
        else:
            parts.append(f"try_strptime({text}, {lit(fmt)})")
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


_VIOLATION_HEAD = f"select {q(RAW_ID)}, cast("
_VIOLATION_MIDDLE = " as varchar) as failing_value from {batch} where "


def _not_in(expr: str, values: list[str] | tuple[str, ...]) -> str:
    """``expr`` is not one of ``values``: a semi-join on a VALUES list, which DuckDB runs as a hash
    lookup (twice as fast as a long ``not in (...)`` list inside an aggregate's filter)."""
    rows = ", ".join(f"({lit(v)})" for v in values)
    return f"{expr} not in (select code from (values {rows}) as codes(code))"


def _violation(failing_value: str, where: str) -> str:
    return _braces(_VIOLATION_HEAD + failing_value) + _VIOLATION_MIDDLE + _braces(where)


def violation_parts(violation_sql: str) -> tuple[str, str] | None:
    """``(failing_value, predicate)`` of a violation query written by :func:`_violation`, else None.

    The contract compiler evaluates a row rule's predicate inside the stream's one aggregate query
    instead of running its query on its own; a query of another shape (a hand-written
    ``UnexpectedRowsExpectation``, a ``qualify`` over a window) returns None and is run as it is.
    """
    head, braces = _braces(_VIOLATION_HEAD), "{batch}"
    if not violation_sql.startswith(head) or violation_sql.count(_VIOLATION_MIDDLE) != 1:
        return None
    value, where = violation_sql[len(head):].split(_VIOLATION_MIDDLE)
    if braces in where or " qualify " in where.lower():
        return None
    return value.replace("{{", "{").replace("}}", "}"), where.replace("{{", "{").replace("}}", "}")


def _accepted_types(text_only: bool, spec: FieldSpec | None, canonical: str, nested: bool) -> list[str]:
    if text_only:  # a CSV file lands every column as text; a record connector lands typed values
        return ["VARCHAR"]
    if nested:
        return ["JSON", "VARCHAR"]
    if spec is not None and spec.unit == "minor":
        return list(_INTEGER_TYPES)  # a DOUBLE here means major units or fractions of a cent
    if canonical in ("decimal", "integer"):
        return ["VARCHAR", *_DECIMAL_TYPES]
    if canonical == "timestamp":
        epoch = any(f.startswith("epoch") for f in (spec.formats if spec else []))
        return ["VARCHAR", *(_INTEGER_TYPES + ["DOUBLE"] if epoch else _TIMESTAMP_TYPES)]
    if canonical == "json_array_length":
        return ["JSON", "VARCHAR"]
    if canonical == "boolean":
        return ["BOOLEAN", "VARCHAR"]
    return ["VARCHAR", *_INTEGER_TYPES]  # ids and codes: text, sometimes numbers


def load_overrides(path: Path | None) -> dict[str, dict[str, Any]]:
    """Read ``overrides.yml``: ``defaults`` and one mapping per suite name.

    Keys: ``amount_max``, ``future_tolerance_minutes``, ``key_mostly_present``, ``min_rows``,
    ``freshness_hours``, ``disable`` (rule ids or checks), ``severity`` (rule id or check ->
    blocking/warning), ``extra_values`` (column -> more accepted values), ``expectations`` (GX
    expectations of your own, appended to the suite).
    """
    if path is None or not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of suite names to overrides")
    unknown = {k for v in data.values() if isinstance(v, dict) for k in v} - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown override key(s) {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    return data


def _settings(overrides: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {**DEFAULTS, **(overrides.get("defaults") or {}), **(overrides.get(name) or {})}


def build_contract(config: ReconConfig, system_name: str, stream_name: str,
                   overrides: Mapping[str, Any] | None = None) -> StreamContract:
    """The contract of ``raw_<system>.<stream>`` from the config and the overrides.

    Args:
        config: the validated project config.
        system_name: a configured system.
        stream_name: one of its streams.
        overrides: the parsed ``overrides.yml`` (see :func:`load_overrides`).

    Returns:
        The stream's contract, rules in a stable order.
    """
    system = config.systems[system_name]
    stream = system.streams[stream_name]
    text_only = system.connector == "file_drop" and stream.format == "csv"
    name = suite_name(system_name, stream_name)
    s = _settings(overrides or {}, name)
    role_fields = ROLE_FIELDS[system.role]
    rules: list[Rule] = []

    def add(rule_id: str, check: str, column: str | None, severity: Severity, etype: str,
            kwargs: dict[str, Any], description: str, violation_sql: str | None = None,
            quarantine: bool = True) -> None:
        if rule_id in s["disable"] or check in s["disable"]:
            return
        severity = s["severity"].get(rule_id, s["severity"].get(check, severity))
        if violation_sql is not None and etype == "UnexpectedRowsExpectation":
            kwargs = {"unexpected_rows_query": violation_sql, **kwargs}
        rules.append(Rule(rule_id, check, column, severity, etype, kwargs, description, violation_sql, quarantine))

    # Required columns and their accepted types.
    accepted: dict[str, list[str]] = {}
    for key in stream.primary_key:
        accepted.setdefault(key.split(".")[0], _accepted_types(text_only, None, "string", "." in key))
    for field_name, spec in stream.fields.items():
        if spec.from_ is None:
            continue
        canonical = spec.type or role_fields[field_name][0]
        column = spec.from_.split(".")[0]
        accepted.setdefault(column, _accepted_types(text_only, spec, canonical, "." in spec.from_))
    if stream.cursor_field:  # optional: a file-drop stream's cursor is the file's modification time
        cursor_spec = next((sp for sp in stream.fields.values() if sp.from_ == stream.cursor_field), None)
        accepted.setdefault(stream.cursor_field.split(".")[0],
                            _accepted_types(text_only, cursor_spec, "timestamp", "." in stream.cursor_field))

    add("row_count", "row_count", None, "warning", "ExpectTableRowCountToBeBetween",
        {"min_value": s["min_rows"]}, f"the stream has at least {s['min_rows']} row(s)")
    for column in accepted:
        add(f"column_exists:{column}", "column_exists", column, "blocking", "ExpectColumnToExist",
            {"column": column}, f"column {column} is present (staging reads it)")
    for column, types in accepted.items():
        add(f"column_type:{column}", "column_type", column, "blocking", "ExpectColumnValuesToBeInTypeList",
            {"column": column, "type_list": types}, f"column {column} has one of the types {types}")

    # Keys.
    for key in stream.primary_key:
        column = key.split(".")[0]
        if "." in key:
            add(f"key_not_null:{key}", "key_not_null", column, "warning", "UnexpectedRowsExpectation", {},
                f"primary key {key} is never null", _violation("null", f"{_text(key)} is null"))
            continue
        add(f"key_not_null:{key}", "key_not_null", key, "warning", "ExpectColumnValuesToNotBeNull",
            {"column": key}, f"primary key {key} is never null (rows with a null key are quarantined)",
            _violation("null", f"{q(key)} is null"))
        add(f"key_mostly_present:{key}", "key_mostly_present", key, "blocking", "ExpectColumnValuesToNotBeNull",
            {"column": key, "mostly": s["key_mostly_present"]},
            f"primary key {key} is present in at least {s['key_mostly_present']:.0%} of rows")
    unique_cols = [*stream.primary_key, *([stream.cursor_field] if stream.cursor_field else []), EXTRACTED_AT]
    if all("." not in c for c in unique_cols):
        partition = ", ".join(q(c) for c in unique_cols)
        key_text = " || '|' || ".join(f"coalesce(cast({q(c)} as varchar), '')" for c in stream.primary_key)
        add("unique_key_per_sync", "unique_key_per_sync", ",".join(stream.primary_key), "warning",
            "ExpectCompoundColumnsToBeUnique", {"column_list": unique_cols},
            f"({', '.join([*stream.primary_key, *([stream.cursor_field] if stream.cursor_field else [])])}) "
            "is unique within a sync "
            "(reported, not quarantined: reconciliation owns it as duplicate_record)",
            _violation(key_text, f"{' and '.join(f'{q(c)} is not null' for c in stream.primary_key)} "
                                 f"qualify count(*) over (partition by {partition}) > 1"),
            quarantine=False)

    # Field-level rules.
    for field_name, spec in sorted(stream.fields.items()):
        if spec.from_ is None:
            continue
        source = spec.from_
        column = source.split(".")[0]
        canonical = spec.type or role_fields[field_name][0]
        required = role_fields[field_name][1]
        text = _text(source)
        # Blank text counts as null only where the column is text; a number column is just null-checked.
        blank = f"{text} is null" if "." in source or accepted[column] == ["VARCHAR"] else f"{q(column)} is null"
        if required and field_name not in ("status", "kind") and source not in stream.primary_key:
            add(f"required_not_null:{source}", "required_not_null", column, "warning", "UnexpectedRowsExpectation",
                {}, f"{source} (canonical {field_name}) is never null or empty",
                _violation("null", blank))
        if spec.values and spec.default is None:
            allowed = sorted({*spec.values, *(str(v).lower() for v in s["extra_values"].get(source, []))})
            label = "accepted_status" if field_name == "status" else "accepted_values"
            add(f"{label}:{source}", label, column, "warning", "UnexpectedRowsExpectation", {},
                f"{source} is one of {allowed} (case-insensitive)",
                _violation(text, f"{text} is not null and {_not_in(f'lower({text})', allowed)}"))
        if field_name == "currency":
            add(f"currency_iso:{source}", "currency_iso", column, "warning", "UnexpectedRowsExpectation", {},
                f"{source} is an ISO 4217 currency code",
                _violation(text, f"{text} is not null and {_not_in(f'upper({text})', ISO_CURRENCIES)}"))
        if canonical == "decimal":
            number = _number(source)
            limit = s["amount_max"] * (100 if spec.unit == "minor" else 1)
            add(f"amount_parseable:{source}", "amount_parseable", column, "warning", "UnexpectedRowsExpectation",
                {}, f"{source} is a number", _violation(text, f"not ({blank}) and {number} is null"))
            low = f"abs({number})" if spec.sign else number
            sign_note = "in absolute value " if spec.sign else "non-negative and "
            add(f"amount_in_bounds:{source}", "amount_in_bounds", column, "warning", "UnexpectedRowsExpectation",
                {}, f"{source} is {sign_note}at most {limit:g}" + (" (minor units)" if spec.unit == "minor" else ""),
                _violation(text, f"{low} < 0 or abs({number}) > {limit}"))
            if spec.unit == "minor":
                add(f"amount_minor_units:{source}", "amount_minor_units", column, "warning",
                    "UnexpectedRowsExpectation", {}, f"{source} is a whole number of minor units (cents)",
                    _violation(text, f"{number} <> floor({number})"))
        if canonical == "timestamp":
            tolerance = int(s["future_tolerance_minutes"])
            epoch = {"epoch_seconds": 1, "epoch_millis": 1000}
            if spec.formats and {*spec.formats} <= set(epoch) and len(spec.formats) == 1:
                # A number of seconds (ms) since 1970: compared as a number, no timestamp built per row.
                number, per_second = _number(source), epoch[spec.formats[0]]
                unparseable = f"not ({blank}) and {number} is null"
                future = (f"{number} > (extract(epoch from {q(EXTRACTED_AT)}) + {tolerance * 60}) * {per_second}")
            else:
                parsed = _timestamp(source, spec)
                unparseable = f"not ({blank}) and ({parsed}) is null"
                future = f"({parsed}) > timezone('UTC', {q(EXTRACTED_AT)}) + to_minutes({tolerance})"
            add(f"timestamp_parseable:{source}", "timestamp_parseable", column, "warning",
                "UnexpectedRowsExpectation", {},
                f"{source} parses as a timestamp ({', '.join(spec.formats) or 'ISO 8601'})",
                _violation(text, unparseable))
            add(f"timestamp_not_future:{source}", "timestamp_not_future", column, "warning",
                "UnexpectedRowsExpectation", {},
                f"{source} is not later than the sync that extracted it (+{tolerance} min)",
                _violation(text, future))

    hours = s["freshness_hours"] or system.freshness_hours
    if hours is not None:  # freshness_hours: null declares a system that is never stale
        add("freshness", "freshness", FILE_MODIFIED, "warning", "ExpectColumnMaxToBeBetween",
            {"column": FILE_MODIFIED, "min_value": {"$PARAMETER": "freshness_min"}},
            f"the newest record arrived at most {hours:g} h before the run")

    order_spec = stream.fields.get("order_id")
    order_sql = _text(order_spec.from_) if order_spec is not None and order_spec.from_ else None
    return StreamContract(system_name, stream_name, system.role, list(stream.primary_key), stream.cursor_field,
                          order_sql, accepted, rules, _extra_expectations(name, s["expectations"]))


def _extra_expectations(name: str, items: Any) -> list[dict[str, Any]]:
    """The ``expectations`` of an overrides.yml entry: GX expectations as ``{type, kwargs, meta?,
    description?}``, checked for shape here (whether recon can compile the type is the runner's
    business: one it cannot compile fails the check, with the reason)."""
    if not isinstance(items, list):
        raise ValueError(f"overrides.yml {name}: expectations must be a list of {{type, kwargs}} mappings")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str) or \
                not isinstance(item.get("kwargs", {}), dict):
            raise ValueError(f"overrides.yml {name}: expectations[{i}] must be a mapping with a `type` "
                             f"(e.g. expect_column_values_to_match_regex) and `kwargs`, got {item!r}")
        unknown = set(item) - {"type", "kwargs", "meta", "description"}
        if unknown:
            raise ValueError(f"overrides.yml {name}: expectations[{i}] has unknown key(s) {sorted(unknown)}")
        out.append({"type": item["type"], "kwargs": dict(item.get("kwargs") or {}),
                    "meta": dict(item.get("meta") or {}), "description": item.get("description")})
    return out


def freshness_hours(config: ReconConfig, system_name: str, stream_name: str,
                    overrides: Mapping[str, Any] | None = None) -> float | None:
    """The stream's freshness limit in hours (override, else the system's ``freshness_hours``).

    Returns:
        The hours, or None when the system is declared never stale (``freshness_hours: null``).
    """
    s = _settings(overrides or {}, suite_name(system_name, stream_name))
    hours = s["freshness_hours"] or config.systems[system_name].freshness_hours
    return None if hours is None else float(hours)
