"""Process settings, read from the environment and validated once at start.

Every setting has a default. A bad value stops the process with one line naming the setting
(see `ridehail.cli`); nothing below the app factory reads these globals.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ratelimit.model import Limit
from ridehail.redis_conn import parse_nodes

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
LIMIT_PATTERN = r"^[1-9][0-9]{0,6}/[0-9]{1,6}(\.[0-9]{1,3})?$"


def parse_limit(name: str, spec: str) -> Limit:
    """`"30/10"`: a bucket of 30 tokens, refilled at 30 tokens every 10 seconds."""
    count, seconds = spec.split("/")
    return Limit(name, capacity=int(count), refill=int(count), period_s=float(seconds))


CLUSTER_CELL_RESOLUTION = 6


class Settings(BaseSettings):
    """All knobs of a ridehail API process. Environment names are given in the docs."""

    model_config = SettingsConfigDict(env_prefix="RIDEHAIL_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="redis://host:port/db of a real Redis; unset means the embedded fakeredis.",
    )
    redis_cluster_nodes: str | None = Field(
        default=None,
        validation_alias="REDIS_CLUSTER_NODES",
        description="host:port,host:port,... of Redis Cluster nodes to start from (instead of "
        "REDIS_URL): ridehail then runs on the cluster, supply sharded by cell.",
    )
    supply_cell_resolution: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="H3 resolution of the supply index cells, each its own Redis Cluster slot; "
        "unset: one index for the city on a single Redis, resolution 6 (~36 km²) on a cluster.",
    )
    redis_timeout_s: PositiveSeconds = Field(
        default=0.5, description="Connect and socket timeout of every Redis command."
    )
    redis_max_connections: int = Field(
        default=64, ge=1, le=10_000, description="Size of the process's Redis connection pool."
    )
    key_prefix: str = Field(
        default="rh",
        pattern=r"^[a-z][a-z0-9_-]{0,15}$",
        description="Prefix of every Redis key, so several deployments can share a server.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias="RIDEHAIL_ADMIN_TOKEN",
        description="Operator token (16+ chars) for batch, events and ops endpoints; unset: off.",
    )

    stale_after_s: PositiveSeconds = Field(
        default=30.0, description="A driver whose last ping is older than this is not offered."
    )
    sweep_interval_s: PositiveSeconds = Field(
        default=5.0, description="How often stale drivers are swept out of the index."
    )
    search_initial_radius_m: float = Field(
        default=100.0,
        gt=0,
        le=50_000,
        allow_inf_nan=False,
        description="First circle of the adaptive nearest search (doubled until k are found).",
    )
    search_max_radius_m: float = Field(
        default=50_000.0,
        gt=0,
        le=50_000,
        allow_inf_nan=False,
        description="Largest circle any nearest search may reach.",
    )
    future_tolerance_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        allow_inf_nan=False,
        description="How far in the future a ping's recorded_at may be before it is a 422.",
    )

    offer_ttl_s: PositiveSeconds = Field(
        default=15.0, description="How long a driver holds an offer before it expires."
    )
    dispatch_max_radius_m: float = Field(
        default=10_000.0,
        gt=0,
        le=50_000,
        allow_inf_nan=False,
        description="Dispatch gives up (no_driver) when nobody untried is this close.",
    )
    dispatch_candidates: int = Field(
        default=5, ge=1, le=50, description="Nearest drivers fetched per matching attempt."
    )
    match_lock_timeout_s: PositiveSeconds = Field(
        default=2.0, description="TTL of the matching lock (correctness never depends on it)."
    )
    match_lock_resolution: int = Field(
        default=7,
        ge=0,
        le=12,
        description="H3 resolution of the matching locks: one lock per cell of pickups.",
    )
    idempotency_ttl_s: int = Field(
        default=86_400, ge=60, description="How long an Idempotency-Key is remembered."
    )
    worker_interval_s: PositiveSeconds = Field(
        default=0.5, description="How often each process's offer-expiry and watchdog pass runs."
    )
    positions_stream_cap: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000,
        description="Approximate length of the position stream for the live map (0: none).",
    )

    pricing_url: str | None = Field(
        default=None,
        validation_alias="PRICING_URL",
        description="http://host:port of the pricing service; unset: every fare is a fallback.",
    )
    pricing_deadline_s: PositiveSeconds = Field(
        default=0.25, description="Most a trip request waits for a quote, retries included."
    )
    pricing_attempt_timeout_s: PositiveSeconds = Field(
        default=0.1, description="Timeout of one call to the pricing service."
    )
    pricing_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Calls per quote at most (retries on outages only)."
    )
    pricing_breaker_fail_max: int = Field(
        default=5, ge=1, le=1000, description="Consecutive outages that open the breaker."
    )
    pricing_breaker_reset_s: PositiveSeconds = Field(
        default=5.0, description="How long the breaker stays open before one probe."
    )
    pricing_quota: str = Field(
        default="200/1",
        pattern=LIMIT_PATTERN,
        description="Calls to pricing allowed, shared by all processes: `<count>/<seconds>`.",
    )
    limit_trip_requests: str = Field(
        default="10/60",
        pattern=LIMIT_PATTERN,
        description="Trip requests per rider (a token bucket): `<count>/<seconds>`.",
    )
    limit_location_updates: str = Field(
        default="30/10",
        pattern=LIMIT_PATTERN,
        description="Single location updates per driver: `<count>/<seconds>`.",
    )
    limit_registrations: str = Field(
        default="30/60",
        pattern=LIMIT_PATTERN,
        description="Driver and rider registrations per client address: `<count>/<seconds>`.",
    )
    surge_window_s: PositiveSeconds = Field(
        default=300.0, description="Recent requests per H3 cell count over this window."
    )
    surge_radius_m: float = Field(
        default=1_000.0,
        gt=0,
        le=10_000,
        allow_inf_nan=False,
        description="Available drivers within this radius of a pickup are its supply.",
    )
    h3_resolution: int = Field(default=8, ge=4, le=12, description="H3 resolution of surge cells.")

    city: str = Field(
        default="helsinki",
        description="The dashboard's and the simulation's city: a built-in name or a JSON file.",
    )
    map_tiles_url: str | None = Field(
        default=None,
        description="Online map tiles for the dashboard ({z}/{x}/{y} URL); unset: our own basemap.",
    )

    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="Largest request body accepted (413 above).",
    )
    max_batch_updates: int = Field(
        default=1000, ge=1, le=10_000, description="Most rows in one batch location request."
    )

    forwarded_allow_ips: str = Field(
        default="",
        pattern=r"^[0-9A-Fa-f.:/,* ]*$",
        description="Proxies whose X-Forwarded-For is believed (comma separated); empty: none.",
    )

    log_level: str = Field(
        default="info", pattern=r"^(debug|info|warning|error)$", description="Log level."
    )
    access_log: bool = Field(default=True, description="Log one JSON line per request.")
    tracing: str = Field(
        default="off",
        pattern=r"^(off|console|otlp)$",
        description="OpenTelemetry spans: off, console (JSON lines on stdout) or otlp "
        "(to OTEL_EXPORTER_OTLP_ENDPOINT).",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_cluster_nodes")
    @classmethod
    def _cluster_nodes(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        parse_nodes(value)  # raises ValueError naming a bad node
        return value

    @property
    def index_resolution(self) -> int | None:
        """The supply index's cell resolution in force (None: one index, one slot)."""
        if self.supply_cell_resolution is None and self.redis_cluster_nodes:
            return CLUSTER_CELL_RESOLUTION
        return self.supply_cell_resolution

    @field_validator("pricing_url")
    @classmethod
    def _pricing_url_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator(
        "pricing_quota", "limit_trip_requests", "limit_location_updates", "limit_registrations"
    )
    @classmethod
    def _limit_period(cls, value: str) -> str:
        parse_limit("check", value)  # a zero period raises here
        return value

    @field_validator("city")
    @classmethod
    def _known_city(cls, value: str) -> str:
        from ridehail.sim.city import load_city

        load_city(value)
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("tracing")
    @classmethod
    def _tracing_exporter_installed(cls, value: str) -> str:
        from ridehail import tracing

        if value == "otlp" and not tracing.otlp_available():
            raise ValueError(tracing.OTLP_MISSING)
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
        env = name if name.isupper() else f"RIDEHAIL_{name.upper()}"
        parts.append(f"{env}: {error['msg']}")
    return "invalid settings: " + "; ".join(parts)


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"RIDEHAIL_{field.upper()}"


def settings_table() -> str:
    """The Markdown table of docs/configuration.md (a test keeps the two equal)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        rows.append(f"| `{env_name(name)}` | {default} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
