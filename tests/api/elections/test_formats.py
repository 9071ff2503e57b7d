"""The interchange-format parsers: every problem names its line and column."""

from __future__ import annotations

import pytest

from api.elections.formats import (
    FormatError,
    Problem,
    decode,
    parse_election_json,
    parse_level,
    parse_official_csv,
    parse_precincts_csv,
    unpack,
)
from api.errors import Invalid
from tally.vocab import PROTOCOL_LINES, EvidenceLevel

OPTIONS = ["a", "b"]
PRECINCTS = {"p1", "p2"}
HEADER = "precinct_id,registered,ballots_issued,ballots_cast,invalid,a,b"


def test_election_json_is_parsed() -> None:
    election = parse_election_json(
        '{"format": "election/1", "id": "x-1", "name": "X", "date": "2020-08-09",'
        ' "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]}'
    )
    assert election.option_ids == ["a", "b"]
    assert str(election.date) == "2020-08-09"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "not valid JSON"),
        (
            '{"format": "election/2", "id": "x", "name": "X",'
            ' "options": [{"id": "a", "label": "A"}]}',
            "field 'format'",
        ),
        (
            '{"format": "election/1", "id": "x", "name": "X",'
            ' "options": [{"id": "A!", "label": "A"}]}',
            "field 'options.0.id'",
        ),
        (
            '{"format": "election/1", "id": "x", "name": "X",'
            ' "options": [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}]}',
            "appears twice",
        ),
        ('{"format": "election/1", "id": "x", "name": "X", "options": []}', "field 'options'"),
    ],
)
def test_bad_election_json_names_the_field(text: str, expected: str) -> None:
    with pytest.raises(FormatError) as exc:
        parse_election_json(text)
    assert expected in str(exc.value)


def test_precincts_keep_extra_columns_as_attributes() -> None:
    rows = parse_precincts_csv(
        "precinct_id,region,district,name,registered,latitude\n"
        "p1,R,D,Station,1500,52.1\np2,R,D,,,\n"
    )
    assert rows[0].registered == 1500
    assert rows[0].attributes == {"latitude": "52.1"}
    assert rows[1].registered is None and rows[1].name is None


def test_precincts_report_duplicates_and_missing_values() -> None:
    with pytest.raises(FormatError) as exc:
        parse_precincts_csv("precinct_id,region,district\np1,R,D\np1,R,D\np2,,D\n")
    message = str(exc.value)
    assert "line 3, column 'precinct_id': precinct 'p1' already appears on line 2" in message
    assert "line 4, column 'region': a value is required" in message


def test_official_rows_allow_empty_cells() -> None:
    rows = parse_official_csv(f"{HEADER}\np1,100,80,80,2,50,\n", OPTIONS, PRECINCTS)
    assert rows[0].votes == {"a": 50, "b": None}
    assert rows[0].lines["ballots_cast"] == 80


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "precinct_id,registered,ballots_issued,ballots_cast,a,b\np1,1,1,1,1,1\n",
            "official.csv, line 1, column 'invalid': required column is missing",
        ),
        (
            f"{HEADER}\np1,100,80,-3,2,50,1\n",
            "official.csv, line 2, column 'ballots_cast': '-3' is not a non-negative integer",
        ),
        (f"{HEADER}\np1,100,80,80,2,5.5,1\n", "line 2, column 'a': '5.5' is not"),
        (
            f"{HEADER}\np1,100,80,80,2,5,1\np9,100,80,80,2,5,1\n",
            "line 3, column 'precinct_id': unknown precinct 'p9'",
        ),
        (
            f"{HEADER}\np1,100,80,80,2,5,1\np1,100,80,80,2,5,1\n",
            "line 3, column 'precinct_id': precinct 'p1' already appears on line 2",
        ),
        (f"{HEADER},c\np1,100,80,80,2,5,1,1\n", "line 1, column 'c': unknown column"),
        (f"{HEADER}\np1,100,80\n", "line 2, column 'ballots_cast': missing: the row has 3 cells"),
        (f"{HEADER}\np1,1,1,1,1,1,1,9\n", "line 2, column '#8': extra cell 8 ('9')"),
    ],
)
def test_bad_official_csv_names_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(FormatError) as exc:
        parse_official_csv(text, OPTIONS, PRECINCTS)
    assert expected in str(exc.value)


def test_many_problems_are_capped_but_counted() -> None:
    body = "".join("p1,x,1,1,1,1,1\n" for _ in range(50))
    with pytest.raises(FormatError) as exc:
        parse_official_csv(f"{HEADER}\n{body}", OPTIONS, PRECINCTS)
    assert exc.value.total > len(exc.value.problems)
    assert "more problems" in str(exc.value)


def test_format_error_is_a_422_naming_the_first_file_with_every_problem() -> None:
    error = FormatError([Problem("a.csv", "bad", 2, "x"), Problem("b.csv", "worse")], total=5)
    assert isinstance(error, Invalid) and error.status_code == 422
    text = "a.csv, line 2, column 'x': bad\nb.csv: worse\n... and 3 more problems"
    assert str(error) == text  # what the command line prints after "refused, nothing stored:"
    assert error.body() == {"field": "a.csv", "message": text}
    assert FormatError([]).field == "file"


def test_every_protocol_line_is_read_from_the_file() -> None:
    header = ",".join(("precinct_id", *PROTOCOL_LINES, *OPTIONS))
    cells = ",".join(str(n) for n in range(1, len(PROTOCOL_LINES) + 1))
    rows = parse_official_csv(f"{header}\np1,{cells},7,8\n", OPTIONS, PRECINCTS)
    assert rows[0].lines == {line: n for n, line in enumerate(PROTOCOL_LINES, 1)}


def test_gzip_and_utf8_problems_name_the_file() -> None:
    import gzip

    assert unpack(gzip.compress(b"x,y\n"), "dir/f.csv.gz") == b"x,y\n"
    assert unpack(b"plain", "f.csv") == b"plain"
    with pytest.raises(FormatError, match=r"^f\.csv\.gz: not a valid gzip file"):
        unpack(b"not gzip", "dir/f.csv.gz")
    with pytest.raises(FormatError, match=r"^f\.csv: not UTF-8 text \(byte 1\)"):
        decode(b"a\xff", "f.csv")


def test_evidence_level_is_one_of_the_vocabulary() -> None:
    assert parse_level("declared", "c.csv") is EvidenceLevel.DECLARED
    with pytest.raises(FormatError) as exc:
        parse_level("rumoured", "c.csv")
    assert str(exc.value) == "c.csv: level must be 'verified' or 'declared', not 'rumoured'"
