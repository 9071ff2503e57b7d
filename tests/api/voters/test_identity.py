"""Voter identifiers: one person, one key; nobody named by the key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.voters.service import normalise_voter_id, voter_key

SECRET = b"k" * 32


def test_phone_number_spellings_are_one_voter() -> None:
    spellings = ["+375 29 111-22-33", "375291112233", "00375291112233", "+375(29)1112233"]
    assert {normalise_voter_id(s) for s in spellings} == {"375291112233"}


def test_other_identifiers_compare_case_insensitively() -> None:
    assert normalise_voter_id(" TelegramUser42 ") == normalise_voter_id("telegramuser42")


@given(st.from_regex(r"\+375[0-9]{9}", fullmatch=True))
def test_keys_differ_per_election_and_per_secret(phone: str) -> None:
    key = voter_key(SECRET, "a", phone)
    assert len(key) == 32
    assert key != voter_key(SECRET, "b", phone)
    assert key != voter_key(b"j" * 32, "a", phone)
    assert phone.encode() not in key and phone[1:].encode() not in key
