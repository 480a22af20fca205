"""shared.openapi: the OpenAPI document names every error status an operation can answer
with, and its body is the one ``shared.http`` sends."""

from typing import Annotated

import httpx
import jsonschema
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from shared.http import BodyLimitMiddleware, install_error_handlers
from shared.internal import require_internal
from shared.openapi import document_errors, error_responses

bearer = HTTPBearer(auto_error=False)


class Thing(BaseModel):
    name: str


def app() -> FastAPI:
    a = FastAPI()

    async def key(given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if given is None:
            raise HTTPException(401, "no key", headers={"WWW-Authenticate": "Bearer"})

    @a.post("/things", dependencies=[Depends(key)], responses=error_responses({409: "It exists already"}))
    async def create(thing: Thing) -> dict[str, str]:
        raise HTTPException(409, f"{thing.name} exists already")

    @a.get("/things/{name}", responses=error_responses({404: "No such thing"}))
    async def read(name: str) -> dict[str, str]:
        raise HTTPException(404, f"no thing {name}")

    @a.delete("/things/{name}")
    async def delete(name: str) -> None:
        return None

    @a.get("/internal/things", dependencies=[Depends(require_internal)])
    async def internal() -> list[str]:
        return []

    install_error_handlers(a)
    document_errors(a)
    a.add_middleware(BodyLimitMiddleware, limit=100)
    return a


def statuses(document: dict, path: str, method: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_every_operation_documents_the_errors_its_construction_implies() -> None:
    document = app().openapi()
    assert statuses(document, "/things", "post") == {"200", "400", "401", "403", "409", "413", "422", "429", "503"}
    assert statuses(document, "/things/{name}", "get") == {"200", "404", "422", "503"}
    assert statuses(document, "/internal/things", "get") == {"200", "403", "503"}
    post = document["paths"]["/things"]["post"]["responses"]
    assert post["409"]["description"] == "It exists already"
    assert post["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationProblem"}
    assert post["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "WWW-Authenticate" in post["401"]["headers"]
    assert "Retry-After" in post["429"]["headers"] and "Retry-After" in post["503"]["headers"]
    # FastAPI's own 422 body is never sent, so it is not in the document either.
    assert "HTTPValidationError" not in document["components"]["schemas"]


def _valid(document: dict, body: object, status: int, path: str, method: str) -> None:
    schema = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    # The document as the root, so the schema's "#/components/..." references resolve.
    jsonschema.validate(body, {**schema, "components": document["components"]})


async def test_the_bodies_sent_are_the_bodies_documented() -> None:
    application = app()
    document = application.openapi()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as client:
        unauthorised = await client.post("/things", json={"name": "a"})
        invalid = await client.post("/things", json={"size": 1}, headers={"Authorization": "Bearer k"})
        conflict = await client.post("/things", json={"name": "a"}, headers={"Authorization": "Bearer k"})
        too_large = await client.post("/things", json={"name": "a" * 200}, headers={"Authorization": "Bearer k"})
        missing = await client.get("/things/a")
    assert [r.status_code for r in (unauthorised, invalid, conflict, too_large, missing)] == [401, 422, 409, 413, 404]
    assert unauthorised.headers["WWW-Authenticate"] == "Bearer"
    assert unauthorised.json() == {"error": "unauthorized", "detail": "no key"}
    assert missing.json() == {"error": "not_found", "detail": "no thing a"}
    assert invalid.json()["detail"][0]["field"] == "name"
    for response, path, method in (
        (unauthorised, "/things", "post"),
        (invalid, "/things", "post"),
        (conflict, "/things", "post"),
        (too_large, "/things", "post"),
        (missing, "/things/{name}", "get"),
    ):
        _valid(document, response.json(), response.status_code, path, method)


async def test_a_method_not_allowed_names_every_method_of_the_path() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        response = await client.put("/things/a")
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET"
    assert response.json()["error"] == "method_not_allowed"
