"""The OpenAPI document as clients need it: bearer auth, and problem+json for every error.

FastAPI documents neither our hand-parsed `Authorization` header nor our problem+json error
bodies, so the generated document is amended once, when it is first asked for.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ridehail.problems import PROBLEM_JSON

PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/v1/city"),
    ("post", "/v1/drivers"),
    ("post", "/v1/riders"),
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

_PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ERRORS = {
    "401": "No token, or one we do not know",
    "403": "A valid token that may not do this",
    "422": "Input that fails validation",
    "429": "Rate limited (see Retry-After and the RateLimit headers)",
    "503": "Redis is unavailable right now (see Retry-After)",
}


def amend(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["schemas"].pop("HTTPValidationError", None)
    components["schemas"].pop("ValidationError", None)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            public = (method, path) in PUBLIC
            if not public:
                operation["security"] = [{"bearer": []}]
            for code, description in _ERRORS.items():
                if public and code in ("401", "403"):
                    continue
                responses[code] = {"description": description, "content": _PROBLEM}
    return document


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = amend(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
