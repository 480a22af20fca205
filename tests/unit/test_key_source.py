"""The consumers' key source: a batch's keys in one request, then from memory; a destroyed key
still reads as destroyed; a key holder without the batch endpoint still serves every key."""

import base64
import json

import httpx

from shared.keys import HttpKeySource


def key_holder(keys: dict[str, bytes], *, batch_endpoint: bool = True) -> tuple[HttpKeySource, list[str]]:
    """A key source whose HTTP goes to an in-memory key holder; the list records each request."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            if not batch_endpoint:
                return httpx.Response(405)
            wanted = json.loads(request.content)["key_ids"]
            found = [{"key_id": k, "key": base64.b64encode(keys[k]).decode()} for k in wanted if k in keys]
            return httpx.Response(200, json={"keys": found})
        key_id = request.url.path.rsplit("/", 1)[1]
        if key_id not in keys:
            return httpx.Response(404)
        return httpx.Response(200, json={"key_id": key_id, "key": base64.b64encode(keys[key_id]).decode()})

    source = HttpKeySource("http://signals", "token", ttl_seconds=60)
    source._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return source, asked


async def test_a_batch_of_keys_is_one_request_and_then_answered_from_memory() -> None:
    source, asked = key_holder({"dk1": b"1" * 32, "dk2": b"2" * 32})
    await source.prefetch({"dk1": "p1", "dk2": "p2", "dk3": "p3"})
    assert await source.data_key("dk1", "p1") == b"1" * 32
    assert await source.data_key("dk2", "p2") == b"2" * 32
    assert await source.data_key("dk3", "p3") is None, "a key left out of the batch is destroyed"
    assert asked == ["POST /internal/keys", "GET /internal/keys/dk3"]

    await source.prefetch({"dk1": "p1"})
    assert len(asked) == 2, "keys in memory are not asked for again"
    source.forget_subject("p1")
    assert await source.data_key("dk1", "p1") == b"1" * 32
    assert asked[-1] == "GET /internal/keys/dk1", "an erased caregiver's key leaves memory"


async def test_a_key_holder_without_the_batch_endpoint_still_serves_every_key() -> None:
    source, asked = key_holder({"dk1": b"1" * 32}, batch_endpoint=False)
    await source.prefetch({"dk1": "p1"})
    assert await source.data_key("dk1", "p1") == b"1" * 32
    assert asked == ["POST /internal/keys", "GET /internal/keys/dk1"]
