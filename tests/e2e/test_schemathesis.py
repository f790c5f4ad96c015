"""Bad input at scale: schemathesis generates requests from our own OpenAPI schema and sends them
to a real `ridehail serve` (embedded Redis), with valid tokens. No 5xx, every 2xx matches the
schema, every 4xx is application/problem+json.

The schema itself has gaps schemathesis would flag at once (no security scheme, no 401/403/404/
409/413/429/503 documented, 422 documented as FastAPI's `HTTPValidationError` in
application/json while the app answers problem+json): those checks are left out here and the
gaps pinned by `test_the_schema_documents_auth_and_problem_responses` (xfail) instead.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.fleet import PROBLEM_JSON
from tests.support import ADMIN_TOKEN, running_ridehail

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MAX_EXAMPLES = 30
# An SSE stream never ends: a generated request that the admin token opens would hang.
SKIPPED_PATHS = "^(/v1/events|/v1/drivers/{driver_id}/events)$"
SEEN: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def api() -> Iterator[dict[str, Any]]:
    """A real API process (embedded Redis, roomy limits), one rider and one driver in it."""
    env = {
        "RIDEHAIL_LIMIT_REGISTRATIONS": "1000000/1",
        "RIDEHAIL_LIMIT_LOCATION_UPDATES": "1000000/1",
        "RIDEHAIL_LIMIT_TRIP_REQUESTS": "1000000/1",
        "RIDEHAIL_ACCESS_LOG": "false",
    }
    started = time.monotonic()
    with running_ridehail(None, **env) as base:
        rider = httpx.post(f"{base}/v1/riders", json={"name": "r"}, timeout=10).json()
        driver = httpx.post(f"{base}/v1/drivers", json={"name": "d"}, timeout=10).json()
        yield {"base": base, "rider": rider, "driver": driver}
    paths = {key.split(" ", 1)[1] for key in SEEN}
    print(
        f"\n[schemathesis] paths={len(paths)} method_path_pairs={len(SEEN)} "
        f"requests={sum(SEEN.values())} max_examples={MAX_EXAMPLES} "
        f"statuses={dict(sorted(STATUSES.items()))} "
        f"seconds={time.monotonic() - started:.1f}"
    )


def _openapi() -> dict[str, Any]:
    """The schema the app serves at /openapi.json (built without starting it)."""
    from ridehail.app import create_app
    from tests.conftest import make_settings

    document: dict[str, Any] = create_app(make_settings()).openapi()
    return document


# From the app's own document at import time (schemathesis' `from_fixture` does not run on
# pytest 9: it reads `request.node._nodeid`); requests go to the real process's base URL.
schema = schemathesis.openapi.from_dict(_openapi()).exclude(path_regex=SKIPPED_PATHS)


def headers_for(case: Any, api: dict[str, Any]) -> dict[str, str]:
    """The admin token, except where only a rider or that driver may act."""
    token = ADMIN_TOKEN
    if case.path == "/v1/trips" or case.path.startswith("/v1/trips/"):
        token = api["rider"]["token"]
    elif case.path.startswith("/v1/drivers/{driver_id}") and secrets.randbelow(2):
        token = api["driver"]["token"]
        case.path_parameters = {
            **(case.path_parameters or {}),
            "driver_id": api["driver"]["driver_id"],
        }
    return {"Authorization": f"Bearer {token}"}


def problem_json_on_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", [""])
        value = content_type[0] if isinstance(content_type, list) else content_type
        assert value == PROBLEM_JSON, f"{response.status_code} answered as {value!r}"
    return None


def schema_conformance_on_2xx(ctx: Any, response: Any, case: Any) -> bool | None:
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_generated_requests_never_get_a_5xx_and_answer_as_documented(
    case: Any, api: dict[str, Any]
) -> None:
    headers = headers_for(case, api)
    if case.path == "/v1/trips" and case.method == "POST":
        headers["Idempotency-Key"] = secrets.token_hex(8)
    response = case.call(base_url=api["base"], headers=headers, timeout=10)
    SEEN[f"{case.method} {case.path}"] += 1
    STATUSES[response.status_code] += 1
    case.validate_response(
        response,
        checks=[not_a_server_error, schema_conformance_on_2xx, problem_json_on_4xx],
        headers=headers,
    )


PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/v1/city"),
    ("post", "/v1/drivers"),
    ("post", "/v1/riders"),
}


def test_the_schema_documents_auth_and_problem_responses() -> None:
    document = _openapi()
    gaps = []
    if "bearer" not in str(document.get("components", {}).get("securitySchemes", {})).lower():
        gaps.append("no bearer security scheme")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            if (method, path) not in PUBLIC and not {"401", "403"} <= set(responses):
                gaps.append(f"{method.upper()} {path}: 401/403 undocumented")
            if "422" in responses and PROBLEM_JSON not in responses["422"].get("content", {}):
                gaps.append(f"{method.upper()} {path}: 422 not problem+json")
    assert not gaps, "\n".join(gaps)


@pytest.mark.parametrize("trip_id", ["0", "abc", "trp_", "trp_zz0123", "trp_x"])
def test_a_trip_id_that_is_not_ours_is_a_4xx_not_a_500(api: dict[str, Any], trip_id: str) -> None:
    headers = {"Authorization": f"Bearer {api['rider']['token']}"}
    with httpx.Client(base_url=api["base"], headers=headers, timeout=10) as client:
        statuses = {client.get(f"/v1/trips/{trip_id}").status_code}
        statuses |= {
            client.post(f"/v1/trips/{trip_id}/{a}").status_code for a in ("accept", "cancel")
        }
    assert statuses <= {404, 422}, statuses
