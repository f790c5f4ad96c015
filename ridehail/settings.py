"""Process settings, read from the environment and validated once at start.

Every setting has a default. A bad value stops the process with one line naming the setting
(see `ridehail.cli`); nothing below the app factory reads these globals.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """All knobs of a ridehail API process. Environment names are given in the docs."""

    model_config = SettingsConfigDict(env_prefix="RIDEHAIL_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="redis://host:port/db of a real Redis; unset means the embedded fakeredis.",
    )
    redis_timeout_s: PositiveSeconds = Field(
        default=0.5, description="Connect and socket timeout for every Redis command."
    )
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)
    key_prefix: str = Field(default="rh", pattern=r"^[a-z][a-z0-9_-]{0,15}$")

    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias="RIDEHAIL_ADMIN_TOKEN",
        description="Operator token for batch, events and ops endpoints; unset disables them.",
    )

    stale_after_s: PositiveSeconds = Field(
        default=30.0, description="A driver whose last ping is older than this is not offered."
    )
    sweep_interval_s: PositiveSeconds = Field(default=5.0)
    search_initial_radius_m: float = Field(default=100.0, gt=0, le=50_000, allow_inf_nan=False)
    search_max_radius_m: float = Field(default=50_000.0, gt=0, le=50_000, allow_inf_nan=False)
    future_tolerance_s: float = Field(default=5.0, ge=0, le=300, allow_inf_nan=False)

    offer_ttl_s: PositiveSeconds = Field(default=15.0, description="How long a driver may ponder.")
    dispatch_max_radius_m: float = Field(default=10_000.0, gt=0, le=50_000, allow_inf_nan=False)
    dispatch_candidates: int = Field(default=5, ge=1, le=50)
    match_lock_timeout_s: PositiveSeconds = Field(default=2.0)
    idempotency_ttl_s: int = Field(default=86_400, ge=60)
    worker_interval_s: PositiveSeconds = Field(default=0.5)
    positions_stream_cap: int = Field(default=10_000, ge=0, le=1_000_000)

    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    max_batch_updates: int = Field(default=1000, ge=1, le=10_000)

    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    access_log: bool = Field(default=True)

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @property
    def stale_after_ms(self) -> int:
        return int(self.stale_after_s * 1000)

    @property
    def offer_ttl_ms(self) -> int:
        return int(self.offer_ttl_s * 1000)


def describe_error(exc: Exception) -> str:
    """One line naming each bad setting, for the process to print before it exits."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return f"invalid settings: {exc}"
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "settings"
        env = name.upper() if name.upper() == "REDIS_URL" else f"RIDEHAIL_{name.upper()}"
        if name.upper() == "RIDEHAIL_ADMIN_TOKEN":
            env = name.upper()
        parts.append(f"{env}: {error['msg']}")
    return "invalid settings: " + "; ".join(parts)
