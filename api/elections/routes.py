"""HTTP routes for elections."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.elections import service
from infra import db

router = APIRouter(prefix="/v1/elections", tags=["elections"])


@router.get("/{election_id}")
def get_election(election_id: str) -> service.Election:
    with db.connection() as conn:
        try:
            return service.get_election(conn, election_id)
        except service.ElectionNotFound as exc:
            raise HTTPException(404, detail={"field": "election_id", "message": str(exc)}) from None
