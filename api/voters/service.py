"""Voters' identity (placeholder until the voters' domain lands): device tokens."""

from __future__ import annotations

import psycopg

from api.accounts.schemas import Principal

DEVICE_TOKEN_PREFIX = "golos_vt_"


def device_principal(conn: psycopg.Connection, token: str) -> Principal | None:
    """The voter behind a device token, or None."""
    return None
