"""Scripted upstream behaviours for FakeUpstream: each is one fault (or the success it must recover to)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.servers import Fault, http_response


def completion_body(text: str = "SELECT count(*) FROM singer", finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": "qwen2.5-1.5b-sql",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 7, "total_tokens": 97},
    }


def answer(status: int, body: bytes, content_type: str = "application/json",
           headers: dict[str, str] | None = None) -> Fault:
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(status, body, content_type, headers))
        await writer.drain()
        return True
    return fault


def ok(text: str = "SELECT count(*) FROM singer") -> Fault:
    return answer(200, orjson.dumps(completion_body(text)))


def answer_then_close() -> Fault:
    """A good answer that says `connection: close`, then the server hangs up, as vLLM does past its keep-alive."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(200, orjson.dumps(completion_body()), headers={"connection": "close"}))
        await writer.drain()
        return False
    return fault


def status(code: int, retry_after: str | None = None) -> Fault:
    headers = {"retry-after": retry_after} if retry_after is not None else None
    return answer(code, orjson.dumps({"error": {"message": "busy", "code": code}}), headers=headers)


def not_json() -> Fault:
    return answer(200, b"{this is not json")


def html_page() -> Fault:
    return answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")


def no_choices() -> Fault:
    return answer(200, orjson.dumps({"id": "x", "choices": []}))


def reset() -> Fault:
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.transport.abort()
        return False
    return fault


async def until_released_or_client_gone(reader: asyncio.StreamReader, release: asyncio.Event | None) -> None:
    """Stall like a stuck vLLM, but notice (as vLLM does) when the gateway hangs up."""
    released = asyncio.ensure_future((release or asyncio.Event()).wait())
    gone = asyncio.ensure_future(reader.read())
    try:
        await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        released.cancel()
        gone.cancel()


def hang(release: asyncio.Event | None = None) -> Fault:
    """Never answers (until `release` is set, if given): a slow first byte."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await until_released_or_client_gone(reader, release)
        return False
    return fault


def sse_head() -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sse_frames(texts: list[str]) -> list[bytes]:
    frames = []
    for index, text in enumerate(texts):
        finish = "stop" if index == len(texts) - 1 else None
        frames.append(b"data: " + orjson.dumps({
            "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}) + b"\n\n")
    frames.append(b"data: " + orjson.dumps({"id": "cmpl-fake", "object": "text_completion", "created": 0,
                                            "model": "m", "choices": [],
                                            "usage": {"prompt_tokens": 90, "completion_tokens": len(texts),
                                                      "total_tokens": 90 + len(texts)}}) + b"\n\n")
    return frames


def stream(frames: list[bytes], *, done: bool = True, stall_after: bool = False, reset_after: bool = False,
           release: asyncio.Event | None = None) -> Fault:
    """A chunked SSE answer; then [DONE], or a stall, a reset, or a plain end with no [DONE]."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(sse_head())
        for frame in frames:
            writer.write(chunk(frame))
        await writer.drain()
        if stall_after:
            await until_released_or_client_gone(reader, release)
            return False
        if reset_after:
            writer.transport.abort()
            return False
        if done:
            writer.write(chunk(b"data: [DONE]\n\n"))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
    return fault


def stream_ok(texts: list[str] | None = None) -> Fault:
    return stream(sse_frames(texts or ["SELECT", " count(*)", " FROM singer"]))


def truncated_frame() -> Fault:
    return stream([b'data: {"id": "cmpl-fake", "choices": [{"text": "SEL\n\n'], done=False)


def choices_body(texts: list[str], finish_reason: str = "stop") -> dict[str, Any]:
    """A completion with one choice per text, as vLLM answers `n` > 1 (the candidate step's call)."""
    return {
        "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": "qwen2.5-1.5b-sql",
        "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": finish_reason}
                    for i, text in enumerate(texts)],
        "usage": {"prompt_tokens": 90, "completion_tokens": 7 * len(texts), "total_tokens": 90 + 7 * len(texts)},
    }


def candidates(texts: list[str]) -> Fault:
    return answer(200, orjson.dumps(choices_body(texts)))


def finished(text: str, finish_reason: str) -> Fault:
    """A whole answer that ended for `finish_reason` ("length": vLLM ran out of tokens)."""
    return answer(200, orjson.dumps(completion_body(text, finish_reason)))


def stream_finished(texts: list[str], finish_reason: str) -> Fault:
    frames = sse_frames(texts)
    last = orjson.loads(frames[-2][len(b"data: "):])
    last["choices"][0]["finish_reason"] = finish_reason
    frames[-2] = b"data: " + orjson.dumps(last) + b"\n\n"
    return stream(frames)


def held(release: asyncio.Event, then: Fault) -> Fault:
    """Waits for `release` (set it on the fake's loop: FakeUpstream.call_soon), then behaves as `then`."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        return await then(reader, writer)
    return fault


def sampled_or_greedy(requests: list[bytes], *, sampled: Fault, greedy: Fault) -> Fault:
    """`sampled` for the candidate step's call (it asks for `n` samples), `greedy` for any other: with the `always`
    policy both calls are in flight at once, so which comes first is not fixed. `requests` is the fake's own list,
    whose last entry is the request being answered when the fault starts."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        chosen = sampled if b'"n":' in requests[-1] else greedy
        return await chosen(reader, writer)
    return fault


def forward(requests: list[bytes], base_url: str) -> Fault:
    """Pass each request on to a real OpenAI-compatible server (vLLM's /v1/completions) and its answer back: the
    fake only counts the calls (`requests` is the fake's own list; its last entry is the request being answered)."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        import httpx

        async with httpx.AsyncClient(timeout=300) as client:
            answer_ = await client.post(f"{base_url}/v1/completions", content=requests[-1],
                                        headers={"content-type": "application/json"})
        writer.write(http_response(answer_.status_code, answer_.content,
                                   answer_.headers.get("content-type", "application/json")))
        await writer.drain()
        return True
    return fault
