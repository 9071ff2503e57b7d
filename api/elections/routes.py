"""HTTP routes for elections."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PUBLIC, Conn
from api.elections import service
from api.elections.schemas import Election

router = APIRouter(prefix="/v1/elections", tags=["elections"])


@router.get("/{election_id}", dependencies=[PUBLIC])
def get_election(election_id: str, conn: Conn) -> Election:
    """An election and how much of it is known (404 ElectionNotFound when none)."""
    return service.get_election(conn, election_id)
