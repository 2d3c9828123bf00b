"""Typed bulk writes into DuckDB: rows become an Arrow table whose schema is the target table's own.

A pandas object column registered in DuckDB takes its type from a sample of its first values: a
column of Decimals whose first thousand values are small is read as DECIMAL(10,4), and the night
fails on the first amount above 999,999.9999. Here every column's type is read from the target
table (``information_schema.columns``) and declared in the Arrow schema, so money and timestamps
are never typed by inference, and a value that does not fit its column fails with an error that
names the table, the column, the row and the value.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import duckdb
import pyarrow as pa

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),  # DuckDB casts (and validates) the text on insert
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "BOOLEAN": pa.bool_(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float32(),
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


class BulkWriteError(ValueError):
    """A value that does not fit the column it is written to."""


def table_types(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """The columns of a table and their DuckDB types, in table order.

    Args:
        con: an open DuckDB connection.
        schema: the table's schema.
        table: the table's name.

    Returns:
        ``(column, data_type)`` pairs, e.g. ``("amount_at_risk", "DECIMAL(20,4)")``.

    Raises:
        BulkWriteError: the table does not exist.
    """
    found = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()
    if not found:
        raise BulkWriteError(f"table {schema}.{table} does not exist")
    return [(name, dtype) for name, dtype in found]


def arrow_type(duckdb_type: str) -> pa.DataType:
    """The Arrow type that carries a DuckDB column type exactly.

    Args:
        duckdb_type: a type as ``information_schema.columns.data_type`` spells it.

    Returns:
        The Arrow type (``DECIMAL(20,4)`` -> ``decimal128(20, 4)``).

    Raises:
        BulkWriteError: a type this module does not map.
    """
    decimal = _DECIMAL.match(duckdb_type)
    if decimal:
        return pa.decimal128(int(decimal[1]), int(decimal[2]))
    if duckdb_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[duckdb_type]
    raise BulkWriteError(f"no Arrow type declared for the DuckDB type {duckdb_type}")


def _decimal_converter(precision: int, scale: int) -> Callable[[Any], Any]:
    quantum = Decimal(1).scaleb(-scale)
    # Context precision = the column's: quantize raises InvalidOperation when the value does not fit.
    context = Context(prec=precision, rounding=ROUND_HALF_UP)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            raise TypeError("a boolean is not an amount")
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation(f"{number} is not a finite amount")
        return number.quantize(quantum, context=context)

    return convert


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)


def _json_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _date(value: Any) -> Any:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value))


def _timestamp(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    elif not isinstance(value, dt.datetime) and isinstance(value, dt.date):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:  # timestamps are stored as naive UTC
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _converter(duckdb_type: str) -> Callable[[Any], Any] | None:
    decimal = _DECIMAL.match(duckdb_type)
    if decimal:
        return _decimal_converter(int(decimal[1]), int(decimal[2]))
    return {"VARCHAR": _text, "JSON": _json_text, "DATE": _date, "TIMESTAMP": _timestamp}.get(duckdb_type)


def _column(schema: str, table: str, name: str, dtype: str, target: pa.DataType, values: list[Any],
            rows: Sequence[dict[str, Any]], key: str) -> pa.Array:
    """One column as an Arrow array of its declared type; values that Arrow takes as they are skip conversion."""
    convert = _converter(dtype)
    if not pa.types.is_decimal(target):  # money is always converted here: rounding and range are ours
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # convert, below
    if convert is None:
        raise BulkWriteError(f"{schema}.{table}.{name}: values do not fit {dtype}")
    try:
        return pa.array([convert(v) for v in values], type=target)
    except (ArithmeticError, TypeError, ValueError, pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    for row, value in zip(rows, values, strict=True):  # find the value to name in the error
        try:
            pa.array([convert(value)], type=target)
        except (ArithmeticError, TypeError, ValueError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            reason = f"{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}"
            raise BulkWriteError(f"{schema}.{table}.{name}: value {value!r} of row {row.get(key)!r} does not fit "
                                 f"{dtype} ({reason})") from None
    raise BulkWriteError(f"{schema}.{table}.{name}: values do not fit {dtype}")


def arrow_rows(con: duckdb.DuckDBPyConnection, schema: str, table: str, rows: Sequence[dict[str, Any]],
               columns: Iterable[str] | None = None) -> pa.Table:
    """Rows as an Arrow table typed like the target table's columns.

    Args:
        con: an open DuckDB connection.
        schema: the target table's schema.
        table: the target table's name.
        rows: dicts by column name; a missing key is NULL.
        columns: the columns to carry (default: every column of the table).

    Returns:
        An Arrow table with the declared schema, ready to ``register``.

    Raises:
        BulkWriteError: a column the table lacks, or a value that does not fit its column (the
            message names the table, column, row key and value).
    """
    types = dict(table_types(con, schema, table))
    names = list(columns) if columns is not None else list(types)
    unknown = [c for c in names if c not in types]
    if unknown:
        raise BulkWriteError(f"{schema}.{table} has no column(s) {unknown}")
    arrays, fields = [], []
    for name in names:
        dtype = types[name]
        target = arrow_type(dtype)
        values = [row.get(name) for row in rows]
        arrays.append(_column(schema, table, name, dtype, target, values, rows, names[0]))
        fields.append(pa.field(name, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def insert_rows(con: duckdb.DuckDBPyConnection, schema: str, table: str, rows: Sequence[dict[str, Any]],
                columns: Iterable[str] | None = None, *, ignore_conflicts: bool = False) -> None:
    """Insert rows in one statement through a typed Arrow table (row-by-row inserts are slow in DuckDB).

    Args:
        con: an open DuckDB connection (the caller owns the transaction).
        schema: the target table's schema.
        table: the target table's name.
        rows: dicts by column name; a missing key is NULL.
        columns: the columns to write (default: every column of the table).
        ignore_conflicts: skip rows whose primary key is already there (``on conflict do nothing``).

    Raises:
        BulkWriteError: as :func:`arrow_rows`.
    """
    if not rows:
        return
    data = arrow_rows(con, schema, table, rows, columns)
    quoted = ", ".join(f'"{c}"' for c in data.column_names)
    view = f"_recon_bulk_{table}"
    con.register(view, data)
    try:
        con.execute(f'insert into "{schema}"."{table}" ({quoted}) select {quoted} from "{view}"'
                    + (" on conflict do nothing" if ignore_conflicts else ""))
    finally:
        con.unregister(view)


def delete_keys(con: duckdb.DuckDBPyConnection, schema: str, table: str, key: str, values: Sequence[str]) -> None:
    """Delete the rows whose text key is one of ``values``, in one statement.

    Args:
        con: an open DuckDB connection (the caller owns the transaction).
        schema: the table's schema.
        table: the table's name.
        key: the key column (text).
        values: the keys to delete.
    """
    if not values:
        return
    view = f"_recon_bulk_{table}_keys"
    con.register(view, pa.table({"key": pa.array(list(values), type=pa.string())}))
    try:
        con.execute(f'delete from "{schema}"."{table}" where "{key}" in (select key from "{view}")')
    finally:
        con.unregister(view)
