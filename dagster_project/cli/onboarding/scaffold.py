"""``recon init``: write a commented starting config for a user's systems by looking at their files.

For each ``NAME:ROLE:FOLDER`` the folder is read as the file-drop connector reads it: one sub-folder per
stream (or the files directly in the folder, as one stream). From the first file of each stream the
scaffold takes the format (by extension; ``.gz`` is looked through), the columns (DuckDB reads the file),
and guesses, where a column name makes it obvious, the primary key, the cursor and the mapping of the
role's canonical fields (:data:`SYNONYMS`), plus the status words it can map. Whatever it cannot guess
is a ``TODO`` comment listing the columns: a required field left as a comment makes ``recon config
validate`` say which field the role still needs. The scaffold is a start, not a verdict: run
``recon config validate --data`` on it next.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.catalogue import NESTED_RECORD_FIELDS, ROLE_FIELDS, ROLE_VALUES, ROLES

# Column names (normalized: lower case, letters and digits only) that obviously hold a canonical field.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "order_id": ("orderid", "ordernumber", "orderno", "ordernr", "orderref", "salesorder", "order"),
    "payment_id": ("paymentid", "chargeid", "transactionid", "txnid", "txn", "paymentref"),
    "invoice_id": ("invoiceid", "invoiceno", "invoicenumber", "docno", "documentid", "documentno"),
    "fulfillment_id": ("fulfillmentid", "shipmentid", "deliveryid", "activationid"),
    "customer_id": ("customerid", "custid", "customer", "cust", "clientid", "accountid", "client"),
    "status": ("status", "state", "result", "orderstatus"),
    "currency": ("currency", "currencycode", "ccy", "curr", "cur"),
    "total_amount": ("totalamount", "total", "ordertotal", "grandtotal", "amount"),
    "amount": ("amount", "netamount", "value", "total", "amountcents", "amountminor", "cents"),
    "line_count": ("linecount", "lines", "itemcount", "items", "lineitems"),
    "ordered_at": ("orderedat", "orderdate", "placedat", "createdat", "created", "createdon"),
    "updated_at": ("updatedat", "updated", "modifiedat", "modified", "lastmodified", "lastupdated", "changedon",
                   "changedat", "ts", "timestamp"),
    "captured_at": ("capturedat", "paidat", "paymentdate", "createdat", "created"),
    "issued_at": ("issuedat", "issuedate", "invoicedate", "docdate", "documentdate", "issued"),
    "fulfilled_at": ("fulfilledat", "shippedat", "shipdate", "deliveredat", "activatedat"),
    "kind": ("kind", "type", "doctype", "documenttype", "object"),
    "segment": ("segment", "customersegment", "tier"),
    "plan": ("plan", "entitlement", "subscription", "product"),
    "account_owner": ("accountowner", "owner", "accountmanager"),
}
# A role's key may also be a bare "id" column when nothing more specific matches.
_KEY_FALLBACK = ("id", "key", "uuid")
_STREAM_NAMES = {"orders": "orders", "payments": "payments", "invoices": "invoices",
                 "fulfillments": "shipments", "customers": "customers"}
_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}


class ScaffoldError(ValueError):
    """A ``--system`` argument or folder that cannot be scaffolded; the message says which and why."""


@dataclass
class StreamGuess:
    """What the scaffold found out about one stream."""

    name: str
    format: str
    glob: str
    columns: list[str]
    sample_file: Path
    files: int
    fields: dict[str, dict[str, object]] = field(default_factory=dict)
    primary_key: str | None = None
    cursor_field: str | None = None
    unmatched_values: list[str] = field(default_factory=list)
    delimiter: str = ","


@dataclass
class SystemGuess:
    """One ``NAME:ROLE:FOLDER`` and its streams."""

    name: str
    role: str
    folder: Path
    streams: list[StreamGuess]
    first_modified: dt.date | None


def parse_system(spec: str) -> tuple[str, str, Path]:
    """Split ``NAME:ROLE:FOLDER`` (the folder may itself contain ':').

    Args:
        spec: the ``--system`` argument.

    Returns:
        (name, role, folder).

    Raises:
        ScaffoldError: naming the argument and what is wrong.
    """
    parts = spec.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ScaffoldError(f"--system {spec!r}: expected NAME:ROLE:FOLDER, e.g. shop:orders:./exports/shop")
    name, role, folder = parts
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScaffoldError(f"--system {spec!r}: the name '{name}' must be lower-case letters, digits and '_'")
    if role not in ROLES:
        raise ScaffoldError(f"--system {spec!r}: unknown role '{role}'; expected one of {', '.join(ROLES)}")
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ScaffoldError(f"--system {spec!r}: folder {path} not found")
    return name, role, path


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip", ".zst"):
        suffixes = suffixes[:-1]
    return _FORMATS.get(suffixes[-1]) if suffixes else None


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and _format_of(p))


def _read(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> tuple[str, str]:
    """A relation over the file and, for CSV, its delimiter."""
    target = str(path).replace("'", "''")
    if fmt == "csv":
        sniff = con.execute(f"select Delimiter from sniff_csv('{target}')").fetchall()
        delimiter = sniff[0][0] if sniff else ","
        return f"read_csv('{target}', all_varchar = true, delim = '{delimiter}', header = true)", delimiter
    if fmt == "jsonl":
        return f"read_json_auto('{target}', format = 'newline_delimited')", ","
    return f"read_parquet('{target}')", ","


def _stream(con: duckdb.DuckDBPyConnection, name: str, folder: Path, prefix: str, role: str) -> StreamGuess | None:
    files = _data_files(folder)
    if not files:
        return None
    sample = files[-1]
    fmt = _format_of(sample) or "csv"
    suffix = "".join(sample.suffixes[-2:]) if sample.suffix.lower() in (".gz", ".gzip", ".zst") else sample.suffix
    relation, delimiter = _read(con, sample, fmt)
    described = con.execute(f"describe select * from {relation}").fetchall()
    columns = [row[0] for row in described]
    types = {row[0]: str(row[1]).upper() for row in described}
    guess = StreamGuess(name, fmt, f"{prefix}*{suffix}", columns, sample, len(files), delimiter=delimiter)
    _map_fields(con, guess, role, relation, types)
    return guess


def _map_fields(con: duckdb.DuckDBPyConnection, guess: StreamGuess, role: str, relation: str,
                types: dict[str, str]) -> None:
    by_norm = {_norm(c): c for c in guess.columns}
    taken: set[str] = set()
    key = next(iter(ROLE_FIELDS[role]))  # the role's key is its first canonical field
    for name, (kind, _) in ROLE_FIELDS[role].items():
        if name in NESTED_RECORD_FIELDS:
            continue  # a nested list needs its element mapping (id, amount, at): written by hand
        candidates = (_norm(name), *SYNONYMS.get(name, ()))
        if name == key:
            candidates = (*candidates, *_KEY_FALLBACK)
        column = next((by_norm[c] for c in candidates if c in by_norm and by_norm[c] not in taken), None)
        if column is None:
            continue
        taken.add(column)
        spec: dict[str, object] = {"from": column}
        if kind in ("decimal", "timestamp", "integer"):
            spec["type"] = kind
        if name == "currency":
            spec["transform"] = "upper"
        if kind == "decimal" and ("cent" in _norm(column) or "minor" in _norm(column)):
            spec["unit"] = "minor"
        if kind == "timestamp" and types.get(column, "").startswith(("BIGINT", "INTEGER", "DOUBLE")):
            spec["formats"] = ["epoch_seconds"]
        if name in ROLE_VALUES.get(role, {}):
            _map_values(con, guess, role, name, column, relation, spec)
        guess.fields[name] = spec
    guess.primary_key = guess.fields.get(key, {}).get("from")  # type: ignore[assignment]
    guess.cursor_field = guess.fields.get("updated_at", {}).get("from")  # type: ignore[assignment]


def _map_values(con: duckdb.DuckDBPyConnection, guess: StreamGuess, role: str, name: str, column: str,
                relation: str, spec: dict[str, object]) -> None:
    words = ROLE_VALUES[role][name]
    seen = [str(v) for (v,) in con.execute(
        f'select distinct cast("{column.replace(chr(34), chr(34) * 2)}" as varchar) as v from {relation} '
        "where v is not null order by v limit 50").fetchall()]
    values = {v.lower(): v.lower() for v in seen if v.lower() in words}
    if seen and len(values) < len(seen):
        guess.unmatched_values = [v for v in seen if v.lower() not in words]
    if values or guess.unmatched_values:
        spec["values"] = values


def inspect_system(name: str, role: str, folder: Path) -> SystemGuess:
    """Look at a system's folder: its streams (sub-folders, or the folder itself), their files and columns.

    Args:
        name: the system's name.
        role: its role.
        folder: the folder its exports are dropped in.

    Returns:
        The guesses.

    Raises:
        ScaffoldError: no readable data file in the folder.
    """
    con = duckdb.connect()
    try:
        streams = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            stream_name = re.sub(r"[^a-z0-9_]", "_", sub.name.lower()).strip("_") or "data"
            if not stream_name[0].isalpha():
                stream_name = f"s_{stream_name}"
            found = _stream(con, stream_name, sub, f"{sub.name}/", role)
            if found:
                streams.append(found)
        if not streams:
            found = _stream(con, _STREAM_NAMES[role], folder, "", role)
            if found:
                streams.append(found)
    except duckdb.Error as exc:
        raise ScaffoldError(f"system {name}: cannot read the files in {folder}: {exc}") from None
    finally:
        con.close()
    if not streams:
        raise ScaffoldError(f"system {name}: no CSV, JSONL or Parquet file in {folder} or its sub-folders")
    files = [p for s in streams for p in _data_files(s.sample_file.parent)]
    first = min((dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC).date() for p in files), default=None)
    return SystemGuess(name, role, folder, streams, first)


def _scalar(value: object) -> str:
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", text) and text.lower() not in (
        "yes", "no", "true", "false", "null", "on", "off", "y", "n") else json.dumps(text)


def _spec_text(spec: dict[str, object]) -> str:
    if set(spec) == {"from"}:
        return _scalar(spec["from"])
    parts = []
    for key, value in spec.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items())
            parts.append(f"{key}: {{{inner}}}")
        elif isinstance(value, list):
            parts.append(f"{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            parts.append(f"{key}: {_scalar(value)}")
    return "{" + ", ".join(parts) + "}"


def render_config(systems: list[SystemGuess], out: Path) -> str:
    """The commented YAML of a starting config.

    Args:
        systems: what :func:`inspect_system` found, one per system.
        out: where the config will be written (its state folder goes beside it).

    Returns:
        The YAML text.
    """
    state = out.parent.resolve() / f".recon-{out.stem}"
    start = min((s.first_modified for s in systems if s.first_modified), default=dt.date.today())
    lines = [
        f"# Written by `recon init` on {dt.date.today()}: a start, not a verdict. Check every TODO, then run",
        f"#   recon --config {out.name} config validate --data --date YYYY-MM-DD",
        "# to see what each stream would give. Reference: README.md (Configuration, Adding a source system).",
        "version: 1",
        "",
        "project:",
        f"  name: {_scalar(out.stem)}",
        f"  duckdb_path: {_scalar(str(state / 'warehouse.duckdb'))}",
        f"  state_dir: {_scalar(str(state))}                 # Dagster home, dbt artifacts, reports, suites",
        f"  start_date: {start}                  # the first as-of day: the oldest file's day",
        "  schedule:",
        "    cron: \"0 2 * * *\"                  # the nightly run, for the day before",
        "    timezone: UTC",
        "",
        "systems:",
    ]
    for system in systems:
        lines += [
            f"  {system.name}:",
            f"    role: {system.role}",
            "    connector: file_drop",
            f"    path: {_scalar(str(system.folder))}",
            "    freshness_hours: 24               # stale (orders ON_HOLD) when nothing new landed for 24 h; "
            "null: never",
            "    streams:",
        ]
        for stream in system.streams:
            lines += _stream_lines(system.role, stream)
    lines += [
        "",
        "owners:",
        "  fallback: data-engineering           # owns what no rule below assigns",
        "  # by_diff_type: {missing_invoice: revenue-ops, missing_payment: payments-ops}",
        "  # by_state: {PAID: billing}",
        "",
    ]
    return "\n".join(lines)


def _stream_lines(role: str, stream: StreamGuess) -> list[str]:
    columns = ", ".join(stream.columns)
    lines = [
        f"      {stream.name}:                   # {stream.files} file(s), e.g. {stream.sample_file.name}",
        f"        format: {stream.format}",
        f"        glob: {_scalar(stream.glob)}",
    ]
    if stream.format == "csv" and stream.delimiter != ",":
        lines.append(f"        csv_delimiter: {json.dumps(stream.delimiter)}")
    key = next(iter(ROLE_FIELDS[role]))
    if stream.primary_key:
        lines.append(f"        primary_key: [{_scalar(stream.primary_key)}]")
    else:
        lines.append(f"        # primary_key: [TODO]            # required: which column identifies a {key}? "
                     f"columns: {columns}")
    if stream.cursor_field:
        lines.append(f"        cursor_field: {_scalar(stream.cursor_field)}")
    lines.append("        sync_mode: append                # each file holds new or changed records; "
                 "snapshot: each file is a full export (a record missing from the latest is deleted)")
    lines.append(f"        fields:                          # the source's columns: {columns}")
    for name, (_, required) in ROLE_FIELDS[role].items():
        spec = stream.fields.get(name)
        words = ROLE_VALUES.get(role, {}).get(name)
        if spec is not None:
            line = f"          {name}: {_spec_text(spec)}"
            notes = []
            if spec.get("unit") == "minor":
                notes.append("TODO: check: minor units (cents) by the column name")
            if words and stream.unmatched_values:
                notes.append(f"TODO: map {', '.join(map(repr, stream.unmatched_values[:10]))} to one of "
                             f"{', '.join(words)} in values")
            lines.append(line + (f"   # {'; '.join(notes)}" if notes else ""))
        elif name == "kind" and role in ("payments", "invoices", "fulfillments"):
            default = {"payments": "charge", "invoices": "invoice", "fulfillments": "shipment"}[role]
            lines.append(f"          kind: {{value: {default}}}        # TODO: a constant, or the column that "
                         f"says {' or '.join(words or ())}")
        elif required:
            lines.append(f"          # {name}: TODO                   # required: which column holds it?")
        else:
            lines.append(f"          # {name}:                        # optional")
    return lines


def scaffold(specs: list[str], out: Path) -> tuple[str, list[SystemGuess]]:
    """Inspect every ``NAME:ROLE:FOLDER`` and render the config (the caller writes it).

    Args:
        specs: the ``--system`` arguments.
        out: the config file to be written.

    Returns:
        (YAML text, what was found per system).

    Raises:
        ScaffoldError: a bad argument, a duplicate name, or a folder without readable data files.
    """
    if not specs:
        raise ScaffoldError("give at least one --system NAME:ROLE:FOLDER")
    parsed = [parse_system(spec) for spec in specs]
    names = [name for name, _, _ in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScaffoldError(f"--system: the name(s) {duplicates} are given twice")
    systems = [inspect_system(name, role, folder) for name, role, folder in parsed]
    return render_config(systems, out), systems
