"""Rider and trip endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ridehail.auth import Role, hash_token, mint_token, new_id
from ridehail.deps import ServicesDep

router = APIRouter(prefix="/v1", tags=["riders"])


class RiderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, strict=True)]


class RiderRegistered(BaseModel):
    rider_id: str
    token: str


@router.post("/riders", status_code=201)
async def register_rider(body: RiderCreate, services: ServicesDep) -> RiderRegistered:
    """Register a rider; the token is shown once and only its hash is kept."""
    rider_id = new_id(Role.RIDER)
    token = mint_token(rider_id)
    await services.riders.create_rider(rider_id, body.name, hash_token(token))
    return RiderRegistered(rider_id=rider_id, token=token)
