"""The tabular report files: CSV and Parquet with the same columns and values."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tally.tables import write_table
from tally.vocab import DISCREPANCY_COLUMNS, DISCREPANCY_TYPES

Rows = Callable[[], list[dict[str, Any]]]  # the discrepancy_rows fixture (conftest.py)


def test_write_table_round_trip(tmp_path: Path, discrepancy_rows: Rows) -> None:
    malicious = discrepancy_rows()[0]["detail"]
    rows = discrepancy_rows()
    # A missing key is a missing value; NaN in a float column is a null too.
    del rows[0]["statistic"]
    rows[1]["q_value"] = float("nan")
    write_table(
        rows, DISCREPANCY_COLUMNS, tmp_path / "d.csv", tmp_path / "d.parquet", DISCREPANCY_TYPES
    )

    table = pq.read_table(tmp_path / "d.parquet")
    assert tuple(table.column_names) == DISCREPANCY_COLUMNS
    assert table.schema.field("crowd").type == pa.int64()
    assert table.schema.field("official").type == pa.int64()
    for name in ("statistic", "p_value", "q_value"):
        assert table.schema.field(name).type == pa.float64()
    for name in ("precinct_id", "region", "detail", "option", "review_status"):
        assert table.schema.field(name).type == pa.string()
    back = table.to_pylist()
    assert back[0]["detail"] == malicious
    assert back[0]["crowd"] == 120 and back[0]["statistic"] is None
    assert back[1]["option"] is None and back[1]["crowd"] is None and back[1]["q_value"] is None
    assert back[1]["detail"] == rows[1]["detail"]
    assert back[2]["p_value"] == 1.5e-05 and back[2]["statistic"] == 75.0
    assert back[2]["region"] == "город Москва"

    with open(tmp_path / "d.csv", newline="", encoding="utf-8") as f:
        text = f.read()
    assert text.startswith(",".join(DISCREPANCY_COLUMNS) + "\n")
    records = list(csv.DictReader(io.StringIO(text)))
    assert tuple(records[0].keys()) == DISCREPANCY_COLUMNS
    assert len(records) == 3
    assert records[0]["detail"] == malicious
    assert records[0]["statistic"] == "" and records[0]["crowd"] == "120"
    assert records[1]["option"] == "" and records[1]["q_value"] == ""
    assert records[1]["detail"] == rows[1]["detail"]  # quotes and line break survive
    assert float(records[2]["p_value"]) == 1.5e-05
    assert float(records[2]["q_value"]) == 0.0123
    assert int(records[2]["official"]) == 1500

    # Same rows, same bytes.
    write_table(
        rows, DISCREPANCY_COLUMNS, tmp_path / "e.csv", tmp_path / "e.parquet", DISCREPANCY_TYPES
    )
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "e.csv").read_bytes()
    assert (tmp_path / "d.parquet").read_bytes() == (tmp_path / "e.parquet").read_bytes()
    # No temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d.csv",
        "d.parquet",
        "e.csv",
        "e.parquet",
    ]


def test_write_table_coerces_and_rejects(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": 7, "n": np.int64(3), "x": 1, "ok": True},
        {"id": "b", "n": 4.0, "x": np.float32(0.5), "ok": None},
        {"id": None, "n": "", "x": "", "ok": "false"},
    ]
    types = {"n": "int", "x": "float", "ok": "bool"}
    write_table(rows, ["id", "n", "x", "ok"], tmp_path / "t.csv", tmp_path / "t.parquet", types)
    back = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert back == [
        {"id": "7", "n": 3, "x": 1.0, "ok": True},
        {"id": "b", "n": 4, "x": 0.5, "ok": None},
        {"id": None, "n": None, "x": None, "ok": False},
    ]
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert lines == ["id,n,x,ok", "7,3,1,true", "b,4,0.5,", ",,,false"]

    with pytest.raises(ValueError, match="'n'"):
        write_table([{"n": 2.5}], ["n"], tmp_path / "u.csv", tmp_path / "u.parquet", types)
    with pytest.raises(ValueError, match="duplicate"):
        write_table([], ["a", "a"], tmp_path / "u.csv", tmp_path / "u.parquet", {})


def test_write_table_empty(tmp_path: Path) -> None:
    write_table(
        [], DISCREPANCY_COLUMNS, tmp_path / "d.csv", tmp_path / "d.parquet", DISCREPANCY_TYPES
    )
    assert (tmp_path / "d.csv").read_text(encoding="utf-8") == ",".join(DISCREPANCY_COLUMNS) + "\n"
    table = pq.read_table(tmp_path / "d.parquet")
    assert table.num_rows == 0 and tuple(table.column_names) == DISCREPANCY_COLUMNS
    assert table.schema.field("crowd").type == pa.int64()


def test_write_table_100k_rows(tmp_path: Path) -> None:
    n = 100_000
    columns = [f"c{i:02d}" for i in range(20)]
    kinds = ["int", "float", "string"]
    types = {c: kinds[i % 3] for i, c in enumerate(columns)}
    rows: list[dict[str, object]] = []
    for r in range(n):
        row: dict[str, object] = {}
        for i, c in enumerate(columns):
            if (r + i) % 17 == 0:
                row[c] = None
            elif types[c] == "int":
                row[c] = r * (i + 1)
            elif types[c] == "float":
                row[c] = r / 7.0
            else:
                row[c] = f"Регион {r}, участок {i}"
        rows.append(row)
    write_table(rows, columns, tmp_path / "big.csv", tmp_path / "big.parquet", types)

    table = pq.read_table(tmp_path / "big.parquet")
    assert table.num_rows == n and table.column_names == columns
    for i, c in enumerate(columns):
        assert table.column(c).null_count == sum(1 for r in range(n) if (r + i) % 17 == 0)
    assert table.column("c00").to_pylist()[:3] == [None, 1, 2]
    assert table.column("c01").to_pylist()[5] == 5 / 7.0
    assert table.column("c02").to_pylist()[9] == "Регион 9, участок 2"

    with open(tmp_path / "big.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        assert next(reader) == columns
        body = list(reader)
    assert len(body) == n
    assert body[5][1] == repr(5 / 7.0) and body[9][2] == "Регион 9, участок 2"
    assert body[0][0] == "" and body[1][0] == "1"
