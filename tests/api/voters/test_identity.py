"""Voter identifiers: one person, one key; nobody named by the key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.voters.service import (
    DEVICE_TOKEN_PREFIX,
    device_token_authentic,
    new_device_token,
    normalise_voter_id,
    voter_key,
)

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


def test_a_device_token_is_authentic_only_whole_and_under_its_own_secret() -> None:
    token = new_device_token(SECRET)
    assert token.startswith(DEVICE_TOKEN_PREFIX)
    assert device_token_authentic(SECRET, token)
    assert not device_token_authentic(b"j" * 32, token)  # another server, or a new secret
    assert not device_token_authentic(SECRET, token[:-1])
    assert not device_token_authentic(SECRET, token + "A")
    assert not device_token_authentic(SECRET, "golos_vt_forged")
    assert not device_token_authentic(SECRET, "golos_at_" + token[len(DEVICE_TOKEN_PREFIX) :])
    assert new_device_token(SECRET) != token


@given(st.data())
def test_no_changed_character_keeps_a_device_token_authentic(data: st.DataObject) -> None:
    token = new_device_token(SECRET)
    at = data.draw(st.integers(len(DEVICE_TOKEN_PREFIX), len(token) - 1))
    other = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[at]))
    assert not device_token_authentic(SECRET, token[:at] + other + token[at + 1 :])
