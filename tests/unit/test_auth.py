"""Bearer tokens: minting, hashing, verifying, the per-process cache, and who may act on what."""

from __future__ import annotations

import hashlib
import re

import pytest

from ridehail.auth import (
    Authenticator,
    Principal,
    Role,
    hash_token,
    mint_token,
    new_id,
)
from ridehail.errors import Forbidden, Unauthorized

ADMIN = "an-admin-token-of-some-length"


class TokenHashes:
    """The stored hashes a real store would hold, as the `HashLookup` port sees them."""

    def __init__(self) -> None:
        self.by_id: dict[str, str] = {}

    def issue(self, role: Role) -> tuple[str, str]:
        principal_id = new_id(role)
        token = mint_token(principal_id)
        self.by_id[principal_id] = hash_token(token)
        return principal_id, token

    async def lookup(self, principal_id: str) -> str | None:
        return self.by_id.get(principal_id)


@pytest.fixture
def hashes() -> TokenHashes:
    return TokenHashes()


def authenticator(
    hashes: TokenHashes, admin: str | None = ADMIN, cache_size: int = 100_000
) -> Authenticator:
    return Authenticator(
        {Role.DRIVER: hashes.lookup, Role.RIDER: hashes.lookup}, admin, cache_size=cache_size
    )


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_new_id_carries_its_role_prefix_and_random_hex() -> None:
    assert re.fullmatch(r"drv_[0-9a-f]{16}", new_id(Role.DRIVER))
    assert re.fullmatch(r"rdr_[0-9a-f]{16}", new_id(Role.RIDER))
    assert new_id(Role.DRIVER) != new_id(Role.DRIVER)


def test_a_minted_token_names_its_principal_and_is_never_minted_twice() -> None:
    first, second = mint_token("drv_1"), mint_token("drv_1")
    assert first.startswith("drv_1.")
    assert second.startswith("drv_1.")
    assert first != second
    assert len(first.partition(".")[2]) >= 40  # 32 random bytes, urlsafe base64


def test_the_stored_form_of_a_token_is_its_sha256_hex_digest() -> None:
    token = mint_token("drv_1")
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in hash_token(token)


async def test_a_driver_token_authenticates_as_that_driver(hashes: TokenHashes) -> None:
    driver_id, token = hashes.issue(Role.DRIVER)
    assert await authenticator(hashes).authenticate(bearer(token)) == Principal(
        Role.DRIVER, driver_id
    )


async def test_a_rider_token_authenticates_as_that_rider(hashes: TokenHashes) -> None:
    rider_id, token = hashes.issue(Role.RIDER)
    assert await authenticator(hashes).authenticate(bearer(token)) == Principal(
        Role.RIDER, rider_id
    )


async def test_the_admin_token_authenticates_as_admin(hashes: TokenHashes) -> None:
    who = await authenticator(hashes).authenticate(bearer(ADMIN))
    assert who.is_admin
    assert who.role is Role.ADMIN


async def test_without_a_configured_admin_token_the_admin_token_is_unknown(
    hashes: TokenHashes,
) -> None:
    with pytest.raises(Unauthorized):
        await authenticator(hashes, admin=None).authenticate(bearer(ADMIN))


async def test_a_well_formed_token_nobody_was_given_is_unknown(hashes: TokenHashes) -> None:
    with pytest.raises(Unauthorized, match="unknown token"):
        await authenticator(hashes).authenticate(bearer(mint_token(new_id(Role.DRIVER))))


async def test_a_token_with_a_wrong_secret_is_unknown(hashes: TokenHashes) -> None:
    driver_id, _ = hashes.issue(Role.DRIVER)
    with pytest.raises(Unauthorized):
        await authenticator(hashes).authenticate(bearer(mint_token(driver_id)))


async def test_a_driver_token_relabelled_as_a_rider_is_unknown(hashes: TokenHashes) -> None:
    _, token = hashes.issue(Role.DRIVER)
    relabelled = "rdr_" + token.removeprefix("drv_")
    with pytest.raises(Unauthorized):
        await authenticator(hashes).authenticate(bearer(relabelled))


async def test_a_token_is_not_valid_for_another_principal_with_the_same_secret(
    hashes: TokenHashes,
) -> None:
    _, token = hashes.issue(Role.DRIVER)
    other_id, _ = hashes.issue(Role.DRIVER)
    borrowed = other_id + "." + token.partition(".")[2]
    with pytest.raises(Unauthorized):
        await authenticator(hashes).authenticate(bearer(borrowed))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic {token}",
        "Token {token}",
        "{token}",
        "Bearer{token}",
        "Bearer " + "x" * 257,
        "Bearer no-dot-in-this-token",
        "Bearer usr_1.not-a-known-role",
        "Bearer drv_.",
        "Bearer .secret",
    ],
)
async def test_a_missing_or_malformed_authorization_header_is_unauthorized(
    hashes: TokenHashes, header: str | None
) -> None:
    _, token = hashes.issue(Role.DRIVER)
    with pytest.raises(Unauthorized):
        await authenticator(hashes).authenticate(
            None if header is None else header.format(token=token)
        )


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_the_bearer_scheme_is_case_insensitive(hashes: TokenHashes, scheme: str) -> None:
    driver_id, token = hashes.issue(Role.DRIVER)
    who = await authenticator(hashes).authenticate(f"{scheme} {token}")
    assert who.id == driver_id


async def test_a_verified_token_is_remembered_without_asking_the_store_again(
    hashes: TokenHashes,
) -> None:
    auth = authenticator(hashes)
    driver_id, token = hashes.issue(Role.DRIVER)
    await auth.authenticate(bearer(token))
    del hashes.by_id[driver_id]
    assert (await auth.authenticate(bearer(token))).id == driver_id


async def test_a_refused_token_is_not_remembered(hashes: TokenHashes) -> None:
    auth = authenticator(hashes)
    driver_id = new_id(Role.DRIVER)
    token = mint_token(driver_id)
    with pytest.raises(Unauthorized):
        await auth.authenticate(bearer(token))
    hashes.by_id[driver_id] = hash_token(token)
    assert (await auth.authenticate(bearer(token))).id == driver_id


async def test_the_token_cache_is_bounded_and_forgets_the_oldest_first(
    hashes: TokenHashes,
) -> None:
    auth = authenticator(hashes, cache_size=2)
    issued = [hashes.issue(Role.DRIVER) for _ in range(3)]
    for _, token in issued:
        await auth.authenticate(bearer(token))
    hashes.by_id.clear()
    with pytest.raises(Unauthorized):
        await auth.authenticate(bearer(issued[0][1]))
    for driver_id, token in issued[1:]:
        assert (await auth.authenticate(bearer(token))).id == driver_id


def test_a_driver_may_act_only_as_itself() -> None:
    me = Principal(Role.DRIVER, "drv_me")
    me.require_self_or_admin(Role.DRIVER, "drv_me")
    with pytest.raises(Forbidden):
        me.require_self_or_admin(Role.DRIVER, "drv_other")


def test_a_rider_may_not_act_as_a_driver_even_with_the_same_id() -> None:
    with pytest.raises(Forbidden):
        Principal(Role.RIDER, "x").require_self_or_admin(Role.DRIVER, "x")


def test_the_admin_may_act_on_anyone_and_nobody_else_is_admin() -> None:
    admin = Principal(Role.ADMIN, "admin")
    admin.require_self_or_admin(Role.DRIVER, "drv_any")
    admin.require_admin()
    for role in (Role.DRIVER, Role.RIDER):
        with pytest.raises(Forbidden):
            Principal(role, "x").require_admin()
