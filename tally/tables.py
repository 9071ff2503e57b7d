"""The tabular report files of ``report/1`` (``../shared/spec/reports.md``).

Pure rendering: rows in, ``.csv`` and ``.parquet`` files out, no database. Column
names and their order are a public contract, kept in :mod:`tally.vocab`
(``DISCREPANCY_COLUMNS`` is the order of ``discrepancies.csv``).

Both files carry the same columns in the same order with the same values:

* CSV: UTF-8 (no BOM), a header line, ``\\n`` line ends, minimal quoting (only
  cells holding a comma, quote or line break); an empty cell for a missing value
  (``None``, or NaN in a float column); booleans as ``true``/``false``; floats in
  their shortest round-trip decimal form (``0.1``, ``0.00001``, ``2``, ``1e+20``).
* Parquet: one column per name, typed by ``types``: ``int`` -> nullable int64
  (counts), ``float`` -> float64 (statistics), ``bool`` -> boolean, anything else
  (and any column not in ``types``) -> string. Missing values are nulls.

The output is deterministic: the same rows give byte-identical files. Each file is
written to a temporary name beside its target and renamed into place, so a reader
(an API download, say) never sees half a file.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from infra.files import atomic_writer

_ARROW_TYPES: Mapping[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def _to_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise ValueError(f"not an integer: {value!r}")
    return int(value)  # type: ignore[call-overload]


def _to_float(value: object) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _to_bool(value: object) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "t", "yes", "1"):
            return True
        if lowered in ("false", "f", "no", "0"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def _to_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


_CONVERTERS: Mapping[str, Callable[[object], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "string": _to_str,
}


def _column_type(types: Mapping[str, str], column: str) -> str:
    kind = types.get(column, "string")
    if kind == "str":
        kind = "string"
    if kind not in _ARROW_TYPES:
        raise ValueError(f"unknown type {kind!r} for column {column!r}")
    return kind


def _values(rows: Sequence[Mapping[str, object]], column: str) -> list[object]:
    try:
        return list(map(itemgetter(column), rows))  # fast when every row has the key
    except KeyError:
        return [row.get(column) for row in rows]


def _arrow_column(raw: list[object], kind: str, column: str) -> pa.Array:
    """The column as an Arrow array of its type; NaN in a float column is a null."""
    arrow_type = _ARROW_TYPES[kind]
    # Arrow would truncate 2.5 into an int column silently: floats there go the slow way.
    if not (kind == "int" and any(isinstance(v, float) for v in raw)):
        try:
            # Fast path: values already of the column's type (or None).
            return pa.array(raw, type=arrow_type, from_pandas=kind == "float")
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            pass
    convert = _CONVERTERS[kind]
    try:
        return pa.array([convert(v) for v in raw], type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise ValueError(f"column {column!r}: {exc}") from exc


def _csv_text(column: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    """The column's CSV cells: minimal quoting (as the csv module), "" for a null."""
    if kind == "bool":
        text = pc.if_else(column, "true", "false")
    elif kind == "string":
        needs_quotes = pc.match_substring_regex(column, r'[",\r\n]')
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
        text = pc.if_else(needs_quotes, quoted, column)
    else:
        # Shortest round-trip decimal form: 0.1, 1e-05 -> 0.00001, 2.0 -> 2.
        text = pc.cast(column, pa.string())
    return pc.fill_null(text, "")


def _write_csv(path: Path, table: pa.Table, kinds: list[str]) -> None:
    # Vectorised in Arrow (the csv module takes seconds on 100k x 20 cells), from the
    # same table as the Parquet file, so both files hold the same values.
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(table.column_names)
    with atomic_writer(path, "w") as handle:
        handle.write(header.getvalue())
        if table.num_rows:
            cells = [_csv_text(c, k) for c, k in zip(table.columns, kinds, strict=True)]
            lines = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
            handle.write("\n".join(lines.to_pylist()))
            handle.write("\n")


def _write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_writer(path, "wb") as handle:
        pq.write_table(table, handle, compression="zstd", write_statistics=True)


def write_table(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    csv_path: Path,
    parquet_path: Path,
    types: Mapping[str, str],
) -> None:
    """Write ``rows`` as ``csv_path`` and ``parquet_path`` with exactly ``columns``, in order.

    A row's missing key is a missing value; keys not in ``columns`` are ignored.
    ``types`` maps a column to ``int``, ``float``, ``bool`` or ``string`` (the
    default). Raises ``ValueError`` for a value its column's type cannot hold
    (e.g. ``2.5`` in an ``int`` column) or for duplicate column names.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("no columns")
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate column names in {columns}")
    kinds = [_column_type(types, c) for c in columns]
    schema = pa.schema([pa.field(c, _ARROW_TYPES[k]) for c, k in zip(columns, kinds, strict=True)])
    arrays = [
        _arrow_column(_values(rows, column), kind, column)
        for column, kind in zip(columns, kinds, strict=True)
    ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    _write_csv(Path(csv_path), table, kinds)
    _write_parquet(Path(parquet_path), table)
