"""Shared data of the report tests: discrepancy rows as report/1 lists them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# Text a hostile data file could carry: every writer and page must keep it inert.
MALICIOUS = '<script>alert("x")</script><img src=x onerror=alert(1)> & "q"'


def _rows() -> list[dict[str, Any]]:
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


@pytest.fixture
def discrepancy_rows() -> Callable[[], list[dict[str, Any]]]:
    """Makes fresh discrepancy rows (proof, proof confirmed, statistical dismissed);
    the first row's detail is hostile markup."""
    return _rows
