"""What every service's OpenAPI document says about errors, in one place.

The error bodies are declared here as models (``Problem``: ``{"error", "detail"}``;
``ValidationProblem``: ``{"error", "detail": [{"field", "message", "type"}]}``), and
``shared.http`` answers with exactly these. ``error_responses`` gives a route the ``responses=``
entry for the statuses only it knows about (404, 409, ...), each with why it happens;
``document_errors`` completes every operation with what follows from how it is built, so no
route can forget it:

- every operation: ``503`` with ``Retry-After`` (its database or broker is away: admission control);
- parameters or a body: ``422`` with ``ValidationProblem`` (replacing FastAPI's default body,
  which the API never sends);
- a body: ``400`` (not parseable as its media type) and ``413`` (over the size limit);
- a bearer credential: ``401`` with ``WWW-Authenticate``, ``403`` (the key lacks the scope) and
  ``429`` with ``Retry-After``; the internal token: ``403``.

A status a route already documents keeps its description; a body it does not give is the
``Problem`` body."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

JsonObject = dict[str, Any]


class Problem(BaseModel):
    """Why a request was refused."""

    error: str = Field(
        description="a stable code, e.g. `not_found`, `too_many_requests`, `service_unavailable`",
        examples=["not_found"],
    )
    detail: str = Field(description="what happened and what to do, for a person to read")


class FieldProblem(BaseModel):
    field: str = Field(
        description="the invalid field: dotted path in the body, or `query.x`, `path.x`, `header.x`",
        examples=["caregiver.postcode"],
    )
    message: str
    type: str = Field(description="the kind of problem, e.g. `missing`, `string_pattern_mismatch`")


class ValidationProblem(BaseModel):
    """Every invalid field of a request, each named."""

    error: str = Field(description="`validation_failed`, or `idempotency_key_reused`", examples=["validation_failed"])
    detail: list[FieldProblem]


def error_code(status: int) -> str:
    """``Problem.error`` of a status: its reason phrase in snake case (404 → ``not_found``)."""
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def problem(status: int, detail: str) -> JsonObject:
    return Problem(error=error_code(status), detail=detail).model_dump()


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
_HEADERS: Mapping[int, JsonObject] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
_DESCRIPTIONS: Mapping[int, str] = {
    400: "The body cannot be parsed (not valid JSON, or not UTF-8)",
    401: "Missing, unknown, revoked or expired credential",
    403: "The credential does not allow this",
    404: "Not found",
    409: "Conflicts with the resource's current state",
    413: "The body is larger than the service's limit (counted while it streams in)",
    422: "A field is invalid: each is named",
    429: "The credential's rate limit is reached: retry after Retry-After seconds",
    503: "A dependency (database or broker) is unavailable; nothing was stored: retry after Retry-After "
    "seconds (with the same Idempotency-Key, where there is one)",
}
_PROBLEM_REF = "#/components/schemas/Problem"
_VALIDATION_REF = "#/components/schemas/ValidationProblem"


def error_responses(described: Mapping[int, str]) -> dict[int | str, JsonObject]:
    """The ``responses=`` entry for the error statuses a route answers with, status → why."""
    return {status: _response(status, why) for status, why in described.items()}


def credential_errors(
    credential: str, forbidden: str, limited: str, more: Mapping[int, str] | None = None
) -> dict[int | str, JsonObject]:
    """The ``responses=`` of a router behind one kind of bearer credential (``shared.auth``):
    401 names the credential, 403 says what it does not reach, 429 what of it is capped."""
    return error_responses(
        {
            401: f"Missing, invalid, revoked or expired {credential}",
            403: forbidden,
            429: f"{limited} reached: retry after Retry-After seconds",
            **(more or {}),
        }
    )


def _response(status: int, description: str | None = None) -> JsonObject:
    ref = _VALIDATION_REF if status == 422 else _PROBLEM_REF
    response: JsonObject = {
        "description": description or _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        "content": {"application/json": {"schema": {"$ref": ref}}},
    }
    if status in _HEADERS:
        response["headers"] = dict(_HEADERS[status])
    return response


def document_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document complete every operation's error responses (above)."""
    generate: Callable[[], JsonObject] = app.openapi

    def openapi() -> JsonObject:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def complete(document: JsonObject) -> JsonObject:
    """``document`` with every operation's error responses filled in, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # FastAPI's default 422 body: the API never sends it.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for model in (Problem, ValidationProblem):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    security = document["components"].get("securitySchemes", {})
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            _complete_operation(operation, security)
    return document


def _complete_operation(operation: JsonObject, security: Mapping[str, JsonObject]) -> None:
    responses: JsonObject = operation.setdefault("responses", {})
    statuses = {503}
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413}
    for requirement in operation.get("security", []):
        for name in requirement:
            bearer = security.get(name, {}).get("scheme", "").lower() == "bearer"
            statuses |= {401, 403, 429} if bearer else {403}
    for status in sorted(statuses | {int(s) for s in responses if s.isdigit() and int(s) >= 400}):
        declared = responses.get(str(status), {})
        if declared.get("description") == "Validation Error":  # FastAPI's words for its own body
            declared.pop("description")
        default = _response(status, declared.get("description"))
        if status == 422:
            declared.pop("content", None)  # FastAPI's default body, never sent
        responses[str(status)] = {**default, **declared}
