"""Bearer tokens: minted once, stored only as a SHA-256 hash, compared in constant time.

A token reads `<principal id>.<secret>`, so checking one is a single lookup of that principal's
stored hash. Verified tokens are remembered in a bounded per-process cache: tokens never change
once minted, so the hot path (a driver's location ping) costs no extra Redis round trip.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ridehail.errors import Forbidden, Unauthorized


class Role(StrEnum):
    DRIVER = "driver"
    RIDER = "rider"
    ADMIN = "admin"


ID_PREFIX = {Role.DRIVER: "drv_", Role.RIDER: "rdr_"}


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    id: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this endpoint needs the admin token")

    def require_self_or_admin(self, role: Role, resource_id: str) -> None:
        if self.is_admin or (self.role is role and self.id == resource_id):
            return
        raise Forbidden(f"this token may not act on {role.value} {resource_id}")


def new_id(role: Role) -> str:
    return ID_PREFIX[role] + secrets.token_hex(8)


def mint_token(principal_id: str) -> str:
    return f"{principal_id}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


HashLookup = Callable[[str], Awaitable[str | None]]


class Authenticator:
    def __init__(
        self,
        lookups: Mapping[Role, HashLookup],
        admin_token: str | None,
        cache_size: int = 100_000,
    ) -> None:
        self._lookups = lookups
        self._admin_hash = hash_token(admin_token) if admin_token else None
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    async def authenticate(self, authorization: str | None) -> Principal:
        token = _bearer(authorization)
        digest = hash_token(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        principal = await self._verify(token, digest)
        self._cache[digest] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str, digest: str) -> Principal:
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal(Role.ADMIN, "admin")
        principal_id, dot, _ = token.partition(".")
        role = next((r for r, p in ID_PREFIX.items() if principal_id.startswith(p)), None)
        if not dot or role is None:
            raise Unauthorized("unknown token")
        stored = await self._lookups[role](principal_id)
        if stored is None or not hmac.compare_digest(digest, stored):
            raise Unauthorized("unknown token")
        return Principal(role, principal_id)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("send Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise Unauthorized("send Authorization: Bearer <token>")
    return token
