"""A small OpenAI-compatible chat-completions server with scripted replies, for driving the real `langchain-openai`
client over HTTP: streaming and not, slow tokens, errors, timeouts, and a record of what it was asked and sent.

Run alone (the streaming benchmark does): ``python tests/openai_server.py --port 8011 --tokens-per-s 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Script:
    """How to reply: ``content`` in tokens of ``chunk`` characters, ``delay_s`` apart; or fail with ``status``; or
    wait ``hang_s`` before answering (longer than the client's timeout)."""

    content: str = ""
    chunk: int = 4
    delay_s: float = 0.0
    status: int = 200
    hang_s: float = 0.0


@dataclass
class Call:
    """One request the server received, and how its streamed reply ended."""

    body: dict
    stream: bool
    tokens_sent: int = 0
    finished: bool = False
    cancelled: bool = False

    @property
    def prompt_sentences(self) -> dict[str, str]:
        """The labelled sentences the client put in its system message: {"S1": text, ...}."""
        system = next(m["content"] for m in self.body["messages"] if m["role"] == "system")
        return dict(re.findall(r"^\[(S\d+)\] (.*)$", system, flags=re.M))

    @property
    def question(self) -> str:
        return str(self.body["messages"][-1]["content"])


@dataclass
class FakeOpenAI:
    """The scripts by a word of the question (first match wins, else ``default``) and the calls received."""

    default: Script = field(default_factory=lambda: Script(json.dumps({"answer": "", "citations": [],
                                                                        "abstain": True})))
    scripts: list[tuple[str, Script]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def script_for(self, question: str) -> Script:
        return next((s for key, s in self.scripts if key.lower() in question.lower()), self.default)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        call = Call(body=body, stream=bool(body.get("stream")))
        self.calls.append(call)
        script = self.script_for(call.question)
        if script.hang_s:
            await asyncio.sleep(script.hang_s)
        if script.status != 200:
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}},
                                status_code=script.status)
        if not call.stream:
            call.tokens_sent, call.finished = 1, True
            return JSONResponse(_completion(body, script.content))
        return StreamingResponse(self._chunks(call, script), media_type="text/event-stream")

    async def _chunks(self, call: Call, script: Script) -> AsyncIterator[str]:
        pieces = [script.content[i:i + script.chunk] for i in range(0, len(script.content), script.chunk)]
        try:
            yield _chunk_line(call.body, {"role": "assistant", "content": ""}, None)
            for piece in pieces:
                if script.delay_s:
                    await asyncio.sleep(script.delay_s)
                yield _chunk_line(call.body, {"content": piece}, None)
                call.tokens_sent += 1
            yield _chunk_line(call.body, {}, "stop")
            yield "data: [DONE]\n\n"
            call.finished = True
        except asyncio.CancelledError:  # the client went away: Starlette cancels the response
            call.cancelled = True
            raise


def _completion(body: dict, content: str) -> dict:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test"), "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


def _chunk_line(body: dict, delta: dict, finish: str | None) -> str:
    chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
             "model": body.get("model", "test"), "system_fingerprint": None,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
    return f"data: {json.dumps(chunk)}\n\n"


class FakeOpenAIThread:
    """``FakeOpenAI`` served by uvicorn from a daemon thread; ``base_url`` is what ``RAG_LLM_BASE_URL`` takes."""

    def __init__(self, fake: FakeOpenAI, port: int) -> None:
        config = uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> FakeOpenAIThread:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def main() -> None:
    """Serve one scripted reply to every question, at a fixed token rate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens-per-s", type=float, default=50.0)
    parser.add_argument("--reply", default=json.dumps({"answer": "The answer, word by word, " * 4 + "[S1].",
                                                       "citations": ["S1"], "abstain": False}))
    args = parser.parse_args()
    fake = FakeOpenAI(default=Script(args.reply, chunk=4, delay_s=1 / args.tokens_per_s))
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
