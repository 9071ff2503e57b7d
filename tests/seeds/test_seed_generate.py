"""The seed election generator: determinism, spec conformance, the documented frauds."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seeds.generate import (
    COLUMNS,
    INCUMBENT,
    OPTION_IDS,
    PARAMS,
    FraudPlan,
    GeneratedElection,
    build_election,
    falsify,
    load_stations,
    main,
    within_integer_percent,
    write_election,
    write_subset,
)
from seeds.model import (
    FALSIFIED_COLUMNS,
    FRAUD_SCHEMES,
    PRECINCT_COLUMNS,
    SEED_DIR,
    SLIP_SCHEME,
    SeedElection,
    load_seed,
)

CHALLENGER = "tsikhanouskaya"
DATA_FILES = ("election.json", "precincts.csv", "truth.csv", "official.csv", "falsified.csv")
TEXT_FILES = (*DATA_FILES, "README.md")


@cache
def default_election() -> GeneratedElection:
    return build_election(load_stations())


@cache
def clean_election() -> GeneratedElection:
    return build_election(load_stations(), clean=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("by-2020")
    write_election(default_election(), out, with_ballot=False)
    return out


@pytest.fixture(scope="module")
def seed(folder: Path) -> SeedElection:
    return load_seed(folder)


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def arithmetic_errors(row: dict[str, int]) -> list[str]:
    errors = []
    if row["ballots_cast"] != row["invalid"] + sum(row[o] for o in OPTION_IDS):
        errors.append("cast != invalid + options")
    if not row["ballots_cast"] <= row["ballots_issued"] <= row["registered"]:
        errors.append("cast <= issued <= registered")
    if row["ballots_received"] != row["ballots_issued"] + row["ballots_cancelled"]:
        errors.append("received != issued + cancelled")
    if row["ballots_issued_early"] + row["ballots_issued_home"] > row["ballots_issued"]:
        errors.append("early + home > issued")
    return errors


# --- determinism ----------------------------------------------------------------------


def test_generation_is_byte_identical(tmp_path: Path) -> None:
    stations = load_stations()
    for name in ("a", "b"):
        write_election(build_election(stations, seed=2020), tmp_path / name, with_ballot=False)
    for f in TEXT_FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_committed_seed_folder_is_up_to_date(folder: Path) -> None:
    """seeds/by-2020 must be exactly what the generator writes for the default seed."""
    for f in TEXT_FILES:
        assert (SEED_DIR / f).read_bytes() == (folder / f).read_bytes(), f
    assert (SEED_DIR / "ballot" / "template.json").is_file()
    assert (SEED_DIR / "ballot" / "reference.png").is_file()


def test_other_seed_differs_and_small_station_sets_work() -> None:
    stations = load_stations()[:400]
    a, b = build_election(stations, seed=1), build_election(stations, seed=2)
    assert a.truth != b.truth
    assert len(a.official) == round(PARAMS.known_protocols * 400 / 5767)
    assert a.truth == build_election(stations, seed=1).truth


# --- spec conformance -----------------------------------------------------------------


def test_election_json(folder: Path) -> None:
    data = json.loads((folder / "election.json").read_text(encoding="utf-8"))
    assert data["format"] == "election/1"
    assert data["id"] == "by-2020-president"
    assert data["date"] == "2020-08-09"
    assert [o["id"] for o in data["options"]] == [
        "dmitriyev",
        "kanapatskaya",
        "lukashenko",
        "tsikhanouskaya",
        "charachen",
        "against_all",
    ]
    assert all(re.fullmatch(r"[a-z0-9_]+", o["id"]) for o in data["options"])
    assert data["options"][3]["label"] == "Sviatlana Tsikhanouskaya"


def test_precincts_csv(folder: Path) -> None:
    columns, rows = read_rows(folder / "precincts.csv")
    assert columns == list(PRECINCT_COLUMNS)
    assert len(rows) == 5767
    ids = [r["precinct_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d\d-\d\d\d-\d\d\d\d", i) for i in ids)
    assert all(r["region"] and r["district"] for r in rows)
    assert all(re.fullmatch(r"[1-9]\d*", r["registered"]) for r in rows)


@pytest.mark.parametrize("name", ["truth.csv", "official.csv"])
def test_results_csv_columns_and_numbers(folder: Path, name: str) -> None:
    columns, rows = read_rows(folder / name)
    assert columns == ["precinct_id", *COLUMNS]
    ids = [r["precinct_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    precincts = {r["precinct_id"] for r in read_rows(folder / "precincts.csv")[1]}
    assert set(ids) <= precincts
    for r in rows:
        assert all(re.fullmatch(r"0|[1-9]\d*", r[c]) for c in COLUMNS), r


def test_registered_agrees_everywhere(seed: SeedElection) -> None:
    for pid, p in seed.precincts.items():
        assert seed.truth[pid]["registered"] == int(p["registered"])
    for pid, row in seed.official.items():
        assert row["registered"] == seed.truth[pid]["registered"]


def test_truth_arithmetic_holds(seed: SeedElection) -> None:
    assert len(seed.truth) == 5767
    for pid, row in seed.truth.items():
        assert arithmetic_errors(row) == [], pid


def test_official_arithmetic_holds_except_documented_slips(seed: SeedElection) -> None:
    slips = {pid for pid, f in seed.falsified.items() if f["scheme"] == SLIP_SCHEME}
    for pid, row in seed.official.items():
        if pid in slips:
            assert arithmetic_errors(row), f"slip {pid} has consistent arithmetic"
        else:
            assert arithmetic_errors(row) == [], pid


# --- the model's figures --------------------------------------------------------------


def test_registered_distribution(seed: SeedElection) -> None:
    urban = np.array(
        [int(p["registered"]) for p in seed.precincts.values() if p["address"].startswith("г.")]
    )
    q1, q2, q3 = np.percentile(urban, [25, 50, 75])
    assert abs(q1 - 1370) < 80 and abs(q2 - 1810) < 80 and abs(q3 - 2200) < 80
    assert urban.min() < 100 and 7000 < urban.max() <= 7900
    rural = np.array(
        [int(p["registered"]) for p in seed.precincts.values() if not p["address"].startswith("г.")]
    )
    assert np.mean((rural >= 100) & (rural <= 600)) > 0.7
    total = sum(int(p["registered"]) for p in seed.precincts.values())
    assert abs(total - 6_840_000) < 0.02 * 6_840_000


def national(rows: list[dict[str, int]]) -> dict[str, float]:
    cast = sum(r["ballots_cast"] for r in rows)
    out = {o: sum(r[o] for r in rows) / cast for o in OPTION_IDS}
    out["turnout"] = sum(r["ballots_issued"] for r in rows) / sum(r["registered"] for r in rows)
    out["invalid"] = sum(r["invalid"] for r in rows) / cast
    out["early"] = sum(r["ballots_issued_early"] for r in rows) / sum(
        r["ballots_issued"] for r in rows
    )
    return out


def test_true_national_result(seed: SeedElection) -> None:
    n = national(list(seed.truth.values()))
    assert abs(n["turnout"] - 0.78) < 0.01
    assert abs(n[CHALLENGER] - 0.56) < 0.015
    assert abs(n[INCUMBENT] - 0.34) < 0.015
    for minor in ("dmitriyev", "kanapatskaya", "charachen", "against_all"):
        assert 0.01 <= n[minor] <= 0.05
    assert 0.01 <= n["invalid"] <= 0.02
    assert 0.40 <= n["early"] <= 0.50


def test_rural_leans_incumbent_and_minsk_challenger(seed: SeedElection) -> None:
    def share(pred: object) -> float:
        rows = [seed.truth[p] for p, row in seed.precincts.items() if pred(p, row)]  # type: ignore[operator]
        return national(rows)[INCUMBENT]

    rural = share(lambda p, r: not r["address"].startswith("г.") and not p.startswith("07-"))
    minsk = share(lambda p, r: p.startswith("07-") and r["address"].startswith("г."))
    towns = share(lambda p, r: r["address"].startswith("г.") and not p.startswith("07-"))
    assert rural > towns > minsk


def test_known_protocols(seed: SeedElection) -> None:
    assert len(seed.official) == 1310
    urban = sum(seed.precincts[p]["address"].startswith("г.") for p in seed.official)
    assert abs(urban / 1310 - 0.75) < 0.01


# --- the documented falsification -----------------------------------------------------


def test_falsified_csv_shape(folder: Path, seed: SeedElection) -> None:
    columns, rows = read_rows(folder / "falsified.csv")
    assert columns == list(FALSIFIED_COLUMNS)
    assert set(seed.falsified) <= set(seed.official)
    schemes = Counter(r["scheme"] for r in rows)
    assert set(schemes) == {*FRAUD_SCHEMES, SLIP_SCHEME}
    n_fraud = sum(schemes[s] for s in FRAUD_SCHEMES)
    assert 0.35 <= n_fraud / len(seed.official) <= 0.40
    assert 10 <= schemes[SLIP_SCHEME] <= 14
    targets = Counter(r["integer_target"] for r in rows if r["scheme"] in FRAUD_SCHEMES)
    assert 0.4 <= (targets["turnout"] + targets["share"]) / n_fraud <= 0.6
    assert targets["turnout"] > 20 and targets["share"] > 20
    assert all(r["detail"].endswith(".") and len(r["detail"]) > 20 for r in rows)


def test_clean_known_stations_equal_truth(seed: SeedElection) -> None:
    for pid in seed.clean_precincts():
        assert seed.official[pid] == seed.truth[pid]


def test_falsified_stations_match_their_scheme(seed: SeedElection) -> None:
    kept = []
    for pid, f in seed.falsified.items():
        off, true = seed.official[pid], seed.truth[pid]
        if f["scheme"] == SLIP_SCHEME:
            assert all(off[o] == true[o] for o in OPTION_IDS)
            assert f["kept_fraction"] == "" and f["stuffed_ballots"] == "0"
            continue
        assert off != true
        assert off[INCUMBENT] > true[INCUMBENT]
        stuffed = off["ballots_issued"] - true["ballots_issued"]
        assert int(f["stuffed_ballots"]) == stuffed
        assert off["registered"] == true["registered"]
        if "moved" in f["scheme"]:
            assert off[CHALLENGER] < true[CHALLENGER] or true[CHALLENGER] == 0
            fraction = off[CHALLENGER] / true[CHALLENGER]
            assert abs(float(f["kept_fraction"]) - fraction) < 1e-4
            kept.append(fraction)
        else:
            assert off[CHALLENGER] == true[CHALLENGER] and f["kept_fraction"] == ""
        if "stuffed" in f["scheme"]:
            assert stuffed > 0
        else:
            assert stuffed == 0
    assert min(kept) < 0.04 and max(kept) > 0.3


def test_integer_targets_are_integer_percents(seed: SeedElection) -> None:
    for pid, f in seed.falsified.items():
        row = seed.official[pid]
        if f["integer_target"] == "turnout":
            for num in (row["ballots_issued"], row["ballots_cast"]):
                pct = 100 * num / row["registered"]
                assert abs(pct - round(pct)) <= 0.05 and pct <= 99, pid
        elif f["integer_target"] == "share":
            pct = 100 * row[INCUMBENT] / row["ballots_cast"]
            assert abs(pct - round(pct)) <= 0.05 and pct <= 99, pid
        if f["integer_target"]:
            assert row["registered"] >= 100


def test_integer_percent_excess_is_planted(seed: SeedElection) -> None:
    """Official protocols show far more integer percents than their true results."""

    def hits(rows: list[dict[str, int]]) -> int:
        n = 0
        for r in rows:
            if r["ballots_cast"] == 0 or r["registered"] < 100:
                continue
            for pct in (
                100 * r["ballots_issued"] / r["registered"],
                100 * r[INCUMBENT] / r["ballots_cast"],
            ):
                n += pct <= 99 and abs(pct - round(pct)) <= 0.05
        return n

    official = hits(list(seed.official.values()))
    truth = hits([seed.truth[p] for p in seed.official])
    assert official - truth > 150


def test_within_integer_percent() -> None:
    assert within_integer_percent(830, 1000, 83)
    assert within_integer_percent(8300, 10003, 83)  # 82.975%: 0.025 pp off
    assert not within_integer_percent(8306, 10000, 83)  # 0.06 pp off
    assert not within_integer_percent(1, 0, 0)


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, 5766),
    scheme=st.sampled_from(["moved", "stuffed", "moved+stuffed"]),
    kept=st.floats(0.0, 1.0),
    minor=st.tuples(*[st.floats(0.0, 1.0)] * 4),
    stuff=st.floats(0.0, 1.0),
    target=st.sampled_from(["turnout", "share", ""]),
    five=st.booleans(),
)
def test_falsify_keeps_arithmetic(
    index: int,
    scheme: str,
    kept: float,
    minor: tuple[float, float, float, float],
    stuff: float,
    target: str,
    five: bool,
) -> None:
    election = default_election()
    pid = election.stations[index].precinct_id
    truth = election.truth[pid]
    if scheme == "moved" and target == "turnout":
        target = "share"  # plans never ask for it: no stuffing to round turnout with
    plan = FraudPlan(scheme, kept, minor, stuff, target, five)  # type: ignore[arg-type]
    row, record = falsify(pid, truth, plan, PARAMS)
    assert arithmetic_errors(row) == []
    assert all(row[c] >= 0 for c in COLUMNS)
    assert record.scheme in FRAUD_SCHEMES
    assert row[INCUMBENT] >= truth[INCUMBENT]
    if record.integer_target == "turnout":
        assert within_integer_percent(
            row["ballots_issued"],
            row["registered"],
            round(100 * row["ballots_issued"] / row["registered"]),
        )
    if record.integer_target == "share":
        assert within_integer_percent(
            row[INCUMBENT], row["ballots_cast"], round(100 * row[INCUMBENT] / row["ballots_cast"])
        )


# --- the clean control ----------------------------------------------------------------


def test_clean_variant_has_no_falsification() -> None:
    clean, dirty = clean_election(), default_election()
    assert clean.election_id == "by-2020-president-clean"
    assert clean.falsified == []
    assert set(clean.official) == set(dirty.official)
    assert clean.truth == dirty.truth
    for pid, row in clean.official.items():
        assert row == clean.truth[pid]


def test_cli_writes_clean_folder(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    assert main(["--out", str(out), "--clean"]) == 0
    seed = load_seed(out)
    assert seed.election_id == "by-2020-president-clean"
    assert seed.falsified == {}
    assert all(seed.official[p] == seed.truth[p] for p in seed.official)
    template = json.loads((out / "ballot" / "template.json").read_text(encoding="utf-8"))
    assert template["election"] == "by-2020-president-clean"
    assert (out / "ballot" / "reference.png").is_file()


# --- subsets --------------------------------------------------------------------------


def test_write_subset(tmp_path: Path, folder: Path, seed: SeedElection) -> None:
    src = tmp_path / "src"
    shutil.copytree(folder, src)
    (src / "ballot").mkdir()
    (src / "ballot" / "template.json").write_text("{}\n", encoding="utf-8")
    write_subset(src, tmp_path / "a", 60, seed=3)
    write_subset(src, tmp_path / "b", 60, seed=3)
    for f in DATA_FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    sub = load_seed(tmp_path / "a")
    assert len(sub.precincts) == 60
    assert sub.election_id == seed.election_id and sub.option_ids == seed.option_ids
    assert set(sub.truth) == set(sub.precincts)
    assert set(sub.official) <= set(sub.precincts)
    assert set(sub.falsified) <= set(sub.official)
    for pid in sub.precincts:
        assert sub.precincts[pid] == seed.precincts[pid]
        assert sub.truth[pid] == seed.truth[pid]
        assert sub.official.get(pid) == seed.official.get(pid)
        assert sub.falsified.get(pid) == seed.falsified.get(pid)
    schemes = {f["scheme"] for f in sub.falsified.values()}
    assert schemes == {*FRAUD_SCHEMES, SLIP_SCHEME}
    assert len(sub.fraud_precincts()) >= 15
    assert len(sub.clean_precincts()) >= 15
    assert len(set(sub.precincts) - set(sub.official)) >= 15
    assert list(sub.precincts) == [p for p in seed.precincts if p in sub.precincts]
    assert (tmp_path / "a" / "ballot" / "template.json").is_file()
    assert (tmp_path / "a" / "README.md").is_file()


def test_write_subset_larger_than_source(tmp_path: Path, folder: Path) -> None:
    small = tmp_path / "small"
    write_subset(folder, small, 12, seed=1)
    write_subset(small, tmp_path / "again", 100)
    assert len(load_seed(tmp_path / "again").precincts) == 12
