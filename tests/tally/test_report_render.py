"""Report rendering: tables (CSV/Parquet), plots (PNG) and the self-contained HTML page."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tally.html import render_report
from tally.plots import crowd_vs_official_png, fingerprint_png, histogram_png
from tally.tables import DISCREPANCY_COLUMNS, DISCREPANCY_TYPES, write_table

MALICIOUS = '<script>alert("x")</script><img src=x onerror=alert(1)> & "q"'


def _discrepancy_rows() -> list[dict[str, Any]]:
    return [
        {
            "precinct_id": "01-1",
            "region": "Республика Адыгея (Адыгея)",
            "district": "1 Адыгейская",
            "flag": "crowd_exceeds_official",
            "kind": "proof",
            "option": "opt2",
            "source": "photos",
            "crowd": 120,
            "official": 86,
            "statistic": None,
            "p_value": None,
            "q_value": None,
            "detail": MALICIOUS,
            "review_status": "open",
        },
        {
            "precinct_id": "01-2",
            "region": "Республика Адыгея (Адыгея)",
            "district": "1 Адыгейская",
            "flag": "protocol_arithmetic",
            "kind": "proof",
            "option": None,
            "source": "protocol",
            "crowd": None,
            "official": 2100,
            "statistic": None,
            "p_value": None,
            "q_value": None,
            "detail": 'ballots_cast 2100 > ballots_issued 2090, "quoted"\nsecond line',
            "review_status": "confirmed",
        },
        {
            "precinct_id": "77-3",
            "region": "город Москва",
            "district": "77 район Щукино",
            "flag": "integer_percent",
            "kind": "statistical",
            "option": "opt4",
            "source": "protocol",
            "crowd": None,
            "official": 1500,
            "statistic": 75.0,
            "p_value": 1.5e-05,
            "q_value": 0.0123,
            "detail": "turnout 80.00%, share 75.00%",
            "review_status": "dismissed",
        },
    ]


# ---------------------------------------------------------------- tables


def test_write_table_round_trip(tmp_path: Path) -> None:
    rows = _discrepancy_rows()
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
    assert back[0]["detail"] == MALICIOUS
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
    assert records[0]["detail"] == MALICIOUS
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


# ---------------------------------------------------------------- plots


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def _election(n: int = 3000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    turnout = np.clip(rng.normal(0.62, 0.08, n), 0, 1)
    share = np.clip(rng.normal(0.7, 0.07, n), 0, 1)
    turnout[:100] = 0.9  # a pile at an integer percentage
    return turnout, share


def test_plots_are_valid_deterministic_pngs() -> None:
    turnout, share = _election()
    hist, xe, ye = np.histogram2d(turnout, share, bins=50, range=[[0, 1], [0, 1]])
    fingerprint = fingerprint_png(hist, xe, ye, "Путин Владимир Владимирович")
    width, height = _png_size(fingerprint)
    assert 600 <= width <= 2000 and 500 <= height <= 2000
    assert fingerprint == fingerprint_png(hist, xe, ye, "Путин Владимир Владимирович")

    histogram = histogram_png(turnout, None, "Turnout", "Turnout", True)
    width, height = _png_size(histogram)
    assert 1000 <= width <= 2500 and 400 <= height <= 1200
    weighted = histogram_png(share, np.full(share.size, 1000.0), "Share", "Share", False)
    assert _png_size(weighted)[0] >= 1000 and weighted != histogram

    rng = np.random.default_rng(2)
    official = rng.integers(0, 900, 500)
    crowd = (official * rng.uniform(0, 1.3, 500)).astype(int)
    proof = crowd > official
    scatter = crowd_vs_official_png(crowd, official, proof, "Тихановская")
    width, height = _png_size(scatter)
    assert 600 <= width <= 2000 and 600 <= height <= 2000
    assert scatter == crowd_vs_official_png(crowd, official, proof, "Тихановская")


def test_plots_without_data() -> None:
    empty = np.array([], dtype=float)
    assert _png_size(histogram_png(empty, None, "Turnout", "Turnout", True))[0] > 0
    assert _png_size(crowd_vs_official_png(empty, empty, empty.astype(bool), "x"))[0] > 0
    edges = np.linspace(0, 1, 11)
    assert _png_size(fingerprint_png(np.zeros((10, 10)), edges, edges, "x"))[0] > 0
    with pytest.raises(ValueError):
        fingerprint_png(np.zeros((10, 9)), edges, edges, "x")


# ---------------------------------------------------------------- html


def _summary() -> dict[str, Any]:
    return {
        "format": "report/1",
        "election": "by-2020-president",
        "precincts": 5767,
        "precincts_with_official": 1310,
        "flags": {
            "crowd_exceeds_official": 300,
            "protocol_arithmetic": 12,
            "integer_percent": 40,
            "brand_new_rule": 3,
        },
        "precincts_with_proof": 305,
        "official_totals": {
            "registered": 1000,
            "ballots_cast": 800,
            "options": {"opt1": 600, "opt2": 150},
        },
        "option_labels": {"opt1": "Лукашенко", "opt2": "Тихановская"},
        "tests": {
            "integer_percent": {
                "observed": 1700,
                "null_mean": 1550.5,
                "null_sd": 115.2,
                "excess": 149.5,
                "p_value": 0.000999,
                "significant": True,
                "leader": "opt1",
                "draws": 1000,
                "null_model": "leader votes ~ Binomial(R, L/R)",
                "inclusion_rule": "R > 0, V >= 100",
            },
            "fingerprint": {
                "f_incremental": 0.31,
                "f_extreme": 0.02,
                "image": "fingerprint.png",
                "nested": {"deeper": {"k": [1, 2, 3]}, "rows": [{"a": 1}, {"a": 2, "b": "<i>"}]},
            },
            "surprise_test": {"value": 3.5, "<b>key</b>": "x"},
        },
        "estimates": {
            "national": {
                "assumptions": ["stations without proof are representative"],
                "shares": {"opt1": {"estimate": 0.34, "ci_low": 0.3, "ci_high": 0.38}},
            }
        },
        "crowd": {"photos_received": 507477, "by_status": {"verified": 500000}},
    }


def _images() -> dict[str, bytes]:
    turnout, share = _election(500)
    hist, xe, ye = np.histogram2d(turnout, share, bins=20, range=[[0, 1], [0, 1]])
    return {
        "fingerprint.png": fingerprint_png(hist, xe, ye, "Лукашенко"),
        "turnout_hist.png": histogram_png(turnout, None, "Turnout", "Turnout", True),
        "crowd_vs_official.png": crowd_vs_official_png(
            np.array([5, 50]), np.array([3, 80]), np.array([True, False]), "Тихановская"
        ),
    }


def _regional() -> list[dict[str, Any]]:
    return [
        {
            "region": "Минская область <b>",
            "stations": 900,
            "stations_with_official": 200,
            "official_shares": {"opt1": 0.8, "opt2": 0.1},
            "flags": {"proof": 40, "statistical": 3},
        }
    ]


def _assert_no_external(page: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()


def test_html_full_report() -> None:
    images = _images()
    page = render_report(_summary(), _discrepancy_rows(), _regional(), images, "Выборы <2020> & co")
    assert page.startswith("<!DOCTYPE html>")
    _assert_no_external(page)
    # Sections, in order: proof, then statistics, then estimates.
    proof, signals, estimates = (
        page.index("<h2>Proof</h2>"),
        page.index("<h2>Statistical signals</h2>"),
        page.index("<h2>Estimates</h2>"),
    )
    assert proof < signals < estimates
    assert "These are not proof." in page and "Estimates, not proof." in page
    # All images embedded; the fingerprint with its test, the crowd plot under proof.
    assert page.count("data:image/png;base64,") == 3
    assert proof < page.index("crowd_vs_official.png") < signals
    fingerprint_test = page.index("Turnout × share fingerprint")
    assert fingerprint_test < page.index("fingerprint.png:") < estimates
    # Untrusted text only escaped.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Выборы &lt;2020&gt; &amp; co" in page
    assert "Минская область &lt;b&gt;" in page and "&lt;b&gt;key&lt;/b&gt;" in page
    assert "&lt;i&gt;" in page
    # Known numbers nicely, the null model and inclusion rule, unknown keys generically.
    assert "1,700" in page and "115.2" in page
    assert "Null model:" in page and "Inclusion rule:" in page
    assert "Лукашенко (opt1)" in page
    assert "Surprise test" in page and "brand_new_rule" in page
    # Estimates with their assumptions and intervals; regional shares in percent.
    assert "stations without proof are representative" in page
    assert "34.00%" in page and "38.00%" in page and "80.00%" in page
    # Proof rows shown; the statistical one lives in the statistics section.
    assert page.index("ballots_cast 2100") < signals
    assert page.index("turnout 80.00%, share 75.00%") > signals
    assert "507,477" in page


def test_html_truncates_proof_rows_and_points_to_csv() -> None:
    rows = [dict(_discrepancy_rows()[0], precinct_id=f"p-{i}", detail="d") for i in range(30)]
    page = render_report(_summary(), rows, [], {}, "t", max_proof_rows=10)
    assert "The first 10 of 30 proof flags" in page and "discrepancies.csv" in page
    assert "p-9<" in page and "p-10<" not in page


@pytest.mark.parametrize(
    "drop",
    [
        ("tests", "estimates", "crowd"),
        ("tests",),
        ("estimates", "crowd"),
    ],
)
def test_html_with_missing_parts(drop: tuple[str, ...]) -> None:
    summary = _summary()
    for key in drop:
        summary.pop(key)
    page = render_report(summary, [], [], {}, "Official figures only")
    _assert_no_external(page)
    for heading in ("Proof", "Statistical signals", "Estimates"):
        assert f"<h2>{heading}</h2>" in page
    if "tests" in drop:
        assert "No statistical tests were run" in page
    if "estimates" in drop:
        assert "No estimates for this election." in page
    assert "No proof flags for this election." in page


def test_html_empty_inputs() -> None:
    # A crowd-only election: empty tests and estimates, no official figures at all.
    summary: dict[str, Any] = {
        "format": "report/1",
        "election": "e",
        "tests": {},
        "estimates": {},
        "crowd": {"photos_received": 10},
    }
    page = render_report(summary, [], [], {}, "Crowd only")
    for heading in ("Proof", "Statistical signals", "Estimates"):
        assert f"<h2>{heading}</h2>" in page
    assert "No official figures." in page and "No regional figures." in page
    assert render_report({}, [], [], {}, "nothing").count("<h2>") >= 3


def test_html_refuses_non_image_bytes() -> None:
    page = render_report(_summary(), [], [], {"fingerprint.png": b"<svg onload=alert(1)>"}, "t")
    assert "onload" not in page and "data:image" not in page
