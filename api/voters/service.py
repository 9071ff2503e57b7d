"""Voters' verified identity: one person, one vote, nobody named.

A voter proves a phone number by a one-time code sent by the configured verifier
(``verifiers``) and receives a device token for one election. The platform keeps

* the phone number only as ``voter_key``: an HMAC with the server's secret, per
  election (the same key their submissions carry), never the number itself;
* the code only as an HMAC of the challenge and the code (a stolen table cannot be
  replayed, and a 6-digit code is not left to a dictionary);
* the device token only as its SHA-256 (a 256-bit random value). The token also
  carries a tag, an HMAC of its random part with the server's secret
  (``device_token_authentic``): a token nobody issued is refused without a query,
  before the upload's body is read. Changing GOLOS_SECRET_KEY revokes every token.

Abuse control: a code lives ``CODE_TTL_SECONDS``, takes ``MAX_ATTEMPTS`` guesses, and
one phone gets ``MAX_CHALLENGES_PER_WINDOW`` codes per election per hour (429 with
Retry-After after that); one network (anonymous callers, keyed by
``infra.ratelimit.network_key``) gets the configured ``verifications_per_network``.
Challenges older than the window are deleted. Verification is not audited: the
audit log names people, and voters must not be named.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime

import psycopg

from api.accounts.schemas import Principal, Role, Via
from api.accounts.service import token_sha256
from api.elections.service import photo_ballot_template
from api.errors import GolosError, Invalid, NotFound, ServiceUnavailable, TooManyRequests
from api.voters import repository
from api.voters.schemas import ChallengeSent, DeviceToken
from api.voters.verifiers import Verifier, VerifierUnavailable
from infra import ratelimit
from infra.settings import get_settings

DEVICE_TOKEN_PREFIX = "golos_vt_"
# A device token: the prefix, 43 characters of randomness (token_urlsafe(32): 256
# bits) and a 22-character tag (128 bits of HMAC-SHA-256, base64url).
_TOKEN_RANDOM_CHARS = 43
_TOKEN_TAG_CHARS = 22
_TOKEN_TAG_CONTEXT = b"golos device token v1\0"
# A code is valid this long: enough for a slow SMS, short enough for 6 digits.
CODE_TTL_SECONDS = 10 * 60
CODE_DIGITS = 6
# Guesses per code: 5 guesses at 10^6 codes is a 1 in 200,000 chance per code.
MAX_ATTEMPTS = 5
# Codes per phone number per election within the window: a person who mistyped
# their number or lost an SMS asks again a few times; a flood of codes (to run up
# the gateway's bill or to harass a number) stops here.
MAX_CHALLENGES_PER_WINDOW = 5
CHALLENGE_WINDOW_SECONDS = 60 * 60

_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,}")


def normalise_voter_id(voter_id: str) -> str:
    """One person, one string: '+375 29 111-22-33', '375291112233' and '00375291112233'
    are the same phone number; other identifiers are compared case-insensitively. Pure."""
    value = voter_id.strip()
    if _PHONE.fullmatch(value):
        digits = re.sub(r"[^0-9]", "", value)
        return digits[2:] if digits.startswith("00") else digits
    return "".join(value.split()).lower()


def voter_key(secret: bytes, election_id: str, voter_id: str) -> bytes:
    """Keyed hash of a voter identifier, per election: a seized database names nobody,
    and the same person cannot be linked across elections. Pure."""
    message = f"{election_id}\x00{normalise_voter_id(voter_id)}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def check_phone(phone: str) -> str:
    """The phone number as the verifier needs it (digits, with a leading +), or
    Invalid. E.164 numbers have at most 15 digits. Pure."""
    value = phone.strip()
    digits = normalise_voter_id(value) if _PHONE.fullmatch(value) else ""
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise Invalid("phone", "must be a phone number with its country code, e.g. +375291234567")
    return "+" + digits


def code_hash(secret: bytes, challenge_id: uuid.UUID, code: str) -> bytes:
    """What the database keeps of a code. Pure."""
    return hmac.new(secret, f"{challenge_id}\x00{code}".encode(), hashlib.sha256).digest()


def _check_election(conn: psycopg.Connection, election_id: str) -> None:
    photo_ballot_template(conn, election_id)


def start_verification(
    conn: psycopg.Connection,
    verifier: Verifier,
    election_id: str,
    phone: str,
    *,
    secret: bytes,
    network: bytes = b"",
    per_network: ratelimit.Limit | None = None,
) -> ChallengeSent:
    """Send a one-time code to ``phone`` for ``election_id``; the challenge's id comes
    back, the code goes only to the phone. 429 after too many codes for one phone, or
    (``per_network``) from one ``network`` (a ``ratelimit.network_key``); a refused
    request counts against neither."""
    number = check_phone(phone)
    _check_election(conn, election_id)
    key = voter_key(secret, election_id, number)
    conn.commit()  # only reads so far; the network's hit is counted on its own
    try:
        with ratelimit.counting(conn, [(per_network, network)]):
            return _send_code(conn, verifier, election_id, number, key, secret)
    except ratelimit.Exceeded as exc:
        raise TooManyRequests(
            "network",
            "too many codes asked for from this network; try again later",
            exc.retry_after,
        ) from None


def _send_code(
    conn: psycopg.Connection,
    verifier: Verifier,
    election_id: str,
    number: str,
    key: bytes,
    secret: bytes,
) -> ChallengeSent:
    with conn.transaction():
        repository.lock_voter(conn, election_id, key)
        repository.forget_old_challenges(conn, CHALLENGE_WINDOW_SECONDS)
        recent = repository.recent_challenges(conn, election_id, key, CHALLENGE_WINDOW_SECONDS)
        if len(recent) >= MAX_CHALLENGES_PER_WINDOW:
            wait = repository.seconds_until(conn, recent[0], CHALLENGE_WINDOW_SECONDS)
            raise TooManyRequests("phone", "too many codes for this number; try again later", wait)
        challenge_id = uuid.uuid4()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        repository.insert_challenge(
            conn,
            challenge_id,
            election_id,
            key,
            code_hash(secret, challenge_id, code),
            CODE_TTL_SECONDS,
        )
        # Inside the transaction: a code that could not be sent leaves no challenge.
        try:
            verifier.send_code(number, code, challenge_id)
        except VerifierUnavailable:
            raise ServiceUnavailable("phone", "the code could not be sent now; retry") from None
    return ChallengeSent(challenge_id=challenge_id, expires_in=CODE_TTL_SECONDS)


def confirm(
    conn: psycopg.Connection,
    election_id: str,
    challenge_id: uuid.UUID,
    code: str,
    *,
    secret: bytes,
    token_days: int,
) -> DeviceToken:
    """Check a code; the right one (once, in time, within ``MAX_ATTEMPTS``) gives a
    device token for the election. A wrong guess counts even though it is refused."""
    with conn.transaction():
        challenge = repository.lock_challenge(conn, election_id, challenge_id)
        if challenge is None:
            raise NotFound("challenge_id", "no such verification; ask for a new code")
        if challenge.used or challenge.expired:
            raise GolosError(
                "code", "this code has expired or was used; ask for a new one", status_code=410
            )
        if challenge.attempts >= MAX_ATTEMPTS:
            raise TooManyRequests("code", "too many wrong codes; ask for a new one", 1)
        expected = code_hash(secret, challenge_id, code.strip())
        if not hmac.compare_digest(expected, challenge.code_hash):
            attempts = repository.count_attempt(conn, challenge_id)
            left = MAX_ATTEMPTS - attempts
            wrong: GolosError = (
                Invalid("code", f"wrong code; {left} attempts left")
                if left > 0
                else TooManyRequests("code", "too many wrong codes; ask for a new one", 1)
            )
        else:
            repository.mark_used(conn, challenge_id)
            token, expires = _new_token(conn, election_id, challenge.voter_key, token_days)
            return DeviceToken(device_token=token, election_id=election_id, expires_at=expires)
    # Refused, yet the wrong guess stays counted (the request's transaction would
    # otherwise roll it back with the refusal).
    conn.commit()
    raise wrong


def _token_tag(app_key: bytes, random_part: str) -> str:
    """The tag a device token carries after its random part. Pure."""
    mac = hmac.new(app_key, _TOKEN_TAG_CONTEXT + random_part.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).rstrip(b"=").decode("ascii")


def new_device_token(app_key: bytes) -> str:
    """A fresh device token, tagged with ``app_key`` (the server's secret)."""
    random_part = secrets.token_urlsafe(32)
    return DEVICE_TOKEN_PREFIX + random_part + _token_tag(app_key, random_part)


def device_token_authentic(app_key: bytes, token: str) -> bool:
    """Whether a server holding ``app_key`` issued ``token``: its tag matches its
    random part. Says nothing of expiry or revocation (the database does); it lets a
    forged token be refused without a query and before a body is read. Pure."""
    if not token.startswith(DEVICE_TOKEN_PREFIX):
        return False
    rest = token[len(DEVICE_TOKEN_PREFIX) :]
    if len(rest) != _TOKEN_RANDOM_CHARS + _TOKEN_TAG_CHARS or not rest.isascii():
        return False
    random_part, tag = rest[:_TOKEN_RANDOM_CHARS], rest[_TOKEN_RANDOM_CHARS:]
    return hmac.compare_digest(tag, _token_tag(app_key, random_part))


def _new_token(
    conn: psycopg.Connection, election_id: str, key: bytes, days: int
) -> tuple[str, datetime]:
    repository.delete_expired_tokens(conn)
    token = new_device_token(get_settings().app_key())
    expires = repository.insert_token(conn, token_sha256(token), election_id, key, days)
    return token, expires


def issue_device_token(conn: psycopg.Connection, election_id: str, phone: str) -> str:
    """A device token for ``phone`` without a code (tests and seeding only; the
    caller commits)."""
    settings = get_settings()
    key = voter_key(settings.voter_key(), election_id, phone)
    token, _ = _new_token(conn, election_id, key, settings.device_token_days)
    return token


def device_principal(conn: psycopg.Connection, token: str) -> Principal | None:
    """The voter behind a device token, or None when it is forged, unknown or
    expired (a forged one without a query)."""
    if not device_token_authentic(get_settings().app_key(), token):
        return None
    found = repository.token_voter(conn, token_sha256(token))
    if found is None:
        return None
    election_id, key = found
    return Principal(role=Role.VOTER, via=Via.DEVICE, voter_key=key, election_id=election_id)
