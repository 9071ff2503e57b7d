"""The voters' domain's shapes: what verification receives and answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class VerificationRequest(BaseModel):
    """``POST /v1/elections/{id}/verification``: the phone number to send a code to."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(
        min_length=6,
        max_length=32,
        description="The voter's phone number, e.g. +375 29 111-22-33. Kept only as a keyed "
        "hash; never stored, logged or returned.",
    )


class ChallengeSent(BaseModel):
    """The code is on its way; confirm it at ``/verification/{challenge_id}``."""

    challenge_id: uuid.UUID
    expires_in: int = Field(description="Seconds the code stays valid.")


class CodeConfirmation(BaseModel):
    """``POST /v1/elections/{id}/verification/{challenge_id}``: the code received."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16, description="The one-time code received.")


class DeviceToken(BaseModel):
    """The voter's device token: sent as ``Authorization: Bearer golos_vt_...`` with
    each submission. Shown once; the platform keeps only its hash."""

    device_token: str
    election_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Challenge:
    """A stored verification challenge (a row of ``voter_challenges``)."""

    id: uuid.UUID
    election_id: str
    voter_key: bytes
    code_hash: bytes
    expires_at: datetime
    attempts: int
    used: bool
    expired: bool
