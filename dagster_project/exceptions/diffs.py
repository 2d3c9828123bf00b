"""Reading one as-of day's diffs and stale systems from the marts (for the exceptions asset and the dry run)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb


def diffs_for(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> list[dict[str, Any]]:
    """The day's rows of ``marts.fct_order_diffs`` as dicts, in a stable order."""
    cursor = con.execute("select * from marts.fct_order_diffs where as_of_date = ? order by diff_id", [as_of])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def stale_systems(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> set[str]:
    """Systems that had not landed fresh data by the end of the day (``marts.fct_system_freshness``)."""
    rows = con.execute(
        "select system from marts.fct_system_freshness where as_of_date = ? and is_stale", [as_of]
    ).fetchall()
    return {r[0] for r in rows}
