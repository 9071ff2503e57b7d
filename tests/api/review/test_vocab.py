"""The review status "asked for more evidence" and what report/1 writes for it."""

from __future__ import annotations

from tally.vocab import UNDECIDED, ReviewStatus, report_review_status


def test_a_flag_awaiting_more_evidence_is_open_in_report_files() -> None:
    assert ReviewStatus.MORE_EVIDENCE in UNDECIDED and ReviewStatus.OPEN in UNDECIDED
    assert report_review_status("more_evidence") == "open"
    assert report_review_status("open") == "open"
    assert report_review_status("confirmed") == "confirmed"
    assert report_review_status("dismissed") == "dismissed"
