"""SQL fragments the engine's hand-written statements share."""

from __future__ import annotations

from django.db import connection


def among(column: str, values, array_type: str = "") -> tuple[str, list]:
    """``column`` is one of ``values``, as (SQL, parameters).

    On PostgreSQL the values travel as one array parameter: a statement about 500 rows then has one
    placeholder instead of 500, which the driver would otherwise parse and bind one by one.
    ``array_type`` names the array's type when the driver cannot tell it (``uuid[]`` for strings).
    """
    values = list(values)
    if connection.vendor == "postgresql":
        return (f"{column} = ANY(%s::{array_type})" if array_type else f"{column} = ANY(%s)"), [values]
    return f"{column} IN ({','.join(['%s'] * len(values))})", values
