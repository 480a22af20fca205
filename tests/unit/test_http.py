import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from shared.http import BodyLimitMiddleware, install_error_handlers


class Thing(BaseModel):
    name: str
    size: int


def app() -> FastAPI:
    a = FastAPI()

    @a.post("/things")
    async def create(thing: Thing) -> dict:
        return {"ok": thing.name}

    install_error_handlers(a)
    a.add_middleware(BodyLimitMiddleware, limit=100)
    return a


async def test_bodies_are_limited_while_streaming():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        assert (await client.post("/things", json={"name": "a", "size": 1})).status_code == 200
        assert (await client.post("/things", json={"name": "a" * 200, "size": 1})).status_code == 413

        async def stream():
            for _ in range(5):
                yield b"x" * 30

        assert (await client.post("/things", content=stream())).status_code == 413


async def test_validation_errors_name_the_field():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        response = await client.post("/things", json={"name": "a", "size": "big"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "size"
