"""OpenAIPolicy against a real (tiny, in-process) OpenAI-compatible HTTP server on localhost."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mosaic_gym.agent.models.openai_policy import (
    OpenAIBackendError,
    OpenAIPolicy,
    ServerUnavailableError,
    to_server_messages,
)

REFUSAL = ('<think>This is unsafe.</think><tool_call>{"name": "refusal_tool", '
           '"arguments": {"reason": "unsafe"}}</tool_call>')


def chat_reply(text: str | None, **message: Any) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, **message},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


class FakeServer:
    """A threaded HTTP server; ``reply(body) -> (status, payload, delay)`` decides answers."""

    def __init__(self, reply: Callable[[dict[str, Any]], tuple[int, Any, float]]) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _answer(self, body: dict[str, Any]) -> None:
                with lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "auth": self.headers.get("Authorization")})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, payload, delay = server.reply(body)
                    time.sleep(delay)
                    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with lock:
                        server.in_flight -= 1

            def do_GET(self) -> None:  # noqa: N802
                self._answer({})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(json.loads(self.rfile.read(length) or b"{}"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers: list[FakeServer] = []

    def start(reply: Callable[[dict[str, Any]], tuple[int, Any, float]]) -> FakeServer:
        servers.append(FakeServer(reply))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


MESSAGES = [
    {"role": "system", "content": "You are an agent."},
    {"role": "user", "content": "Read notes.txt"},
    {"role": "assistant", "content": '<think>read</think><tool_call>{"name": "read_file", '
                                     '"arguments": {"path": "notes.txt"}}</tool_call>',
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "read_file", "arguments": {"path": "notes.txt"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "hello"},
]
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file.",
                                           "parameters": {"type": "object", "properties": {}}}}]


def test_request_shape_and_text(serve):
    server = serve(lambda body: (200, chat_reply(REFUSAL), 0.0))
    policy = OpenAIPolicy("tiny", server.url.removesuffix("/v1"), api_key="k",
                          sampling={"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 32,
                                    "seed": 5, "top_k": 20})
    assert policy.act(MESSAGES, TOOLS, {}) == REFUSAL
    assert policy.act(MESSAGES, TOOLS, {}) == REFUSAL
    first, second = (r["body"] for r in server.requests)
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert server.requests[0]["auth"] == "Bearer k"
    assert first["model"] == "tiny"
    assert first["max_tokens"] == 32 and "max_new_tokens" not in first
    assert (first["temperature"], first["top_p"], first["top_k"]) == (0.7, 0.9, 20)
    assert first["seed"] != second["seed"]  # each turn its own draw...
    replay = OpenAIPolicy("tiny", server.url, sampling={"seed": 5})
    replay.reset(None, seed=None)
    replay.act(MESSAGES, TOOLS)
    assert server.requests[2]["body"]["seed"] == first["seed"]  # ...reproducible per episode
    assert first["tools"] == TOOLS and first["tool_choice"] == "none"
    # The assistant's MOSAIC text is kept verbatim; bookkeeping tool_calls are not sent.
    assert first["messages"][2] == {"role": "assistant", "content": MESSAGES[2]["content"]}
    assert first["messages"][3]["role"] == "tool"
    assert first["messages"][3]["tool_call_id"] == "call_1"
    assert policy.stats.requests == 2 and policy.stats.completion_tokens == 6


def test_keep_tool_calls_serialises_arguments():
    converted = to_server_messages(MESSAGES, keep_tool_calls=True)
    arguments = converted[2]["tool_calls"][0]["function"]["arguments"]
    assert isinstance(arguments, str) and json.loads(arguments) == {"path": "notes.txt"}


def test_transient_errors_are_retried(serve):
    answers = iter([(503, {"error": {"message": "warming up"}}, 0.0),
                    (429, {"error": {"message": "busy"}}, 0.0),
                    (200, chat_reply("<think>x</think>done"), 0.0)])
    server = serve(lambda body: next(answers))
    policy = OpenAIPolicy("m", server.url, backoff=0.01)
    assert policy.act(MESSAGES, TOOLS) == "<think>x</think>done"
    assert len(server.requests) == 3 and policy.stats.retries == 2


def test_persistent_5xx_gives_up_with_clear_error(serve):
    server = serve(lambda body: (500, {"error": {"message": "engine dead"}}, 0.0))
    policy = OpenAIPolicy("m", server.url, max_retries=2, backoff=0.01)
    with pytest.raises(ServerUnavailableError, match="engine dead"):
        policy.act(MESSAGES, TOOLS)
    assert len(server.requests) == 3


def test_server_down_raises_instead_of_hanging():
    url = f"http://127.0.0.1:{free_port()}/v1"
    policy = OpenAIPolicy("m", url, max_retries=2, backoff=0.01, timeout=2)
    start = time.monotonic()
    with pytest.raises(ServerUnavailableError) as info:
        policy.act(MESSAGES, TOOLS)
    assert time.monotonic() - start < 5
    assert url in str(info.value) and "vllm serve" in str(info.value)


def test_slow_server_times_out(serve):
    server = serve(lambda body: (200, chat_reply("late"), 1.5))
    policy = OpenAIPolicy("m", server.url, timeout=0.3, max_retries=1, backoff=0.01)
    start = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="timeout"):
        policy.act(MESSAGES, TOOLS)
    assert time.monotonic() - start < 1.5
    assert len(server.requests) == 2


def test_wrong_model_is_not_retried(serve):
    server = serve(lambda body: (404, {"error": {"message": "The model `x` does not exist."}},
                                 0.0))
    policy = OpenAIPolicy("x", server.url, backoff=0.01)
    with pytest.raises(OpenAIBackendError, match="does not exist") as info:
        policy.act(MESSAGES, TOOLS)
    assert not isinstance(info.value, ServerUnavailableError)
    assert len(server.requests) == 1


def test_context_overflow_ends_the_turn_as_empty_text(serve):
    message = "This model's maximum context length is 2048 tokens. However, you requested 3000"
    server = serve(lambda body: (400, {"error": {"message": message}}, 0.0))
    policy = OpenAIPolicy("m", server.url)
    assert policy.act(MESSAGES, TOOLS) == ""
    assert policy.stats.context_overflows == 1


@pytest.mark.parametrize("payload", [
    b"<html>not json</html>",
    {"choices": []},
    {"object": "chat.completion"},
    chat_reply(None),
    chat_reply("   "),
])
def test_malformed_answers_become_format_errors(serve, payload):
    import gymnasium as gym

    import mosaic_gym  # noqa: F401

    server = serve(lambda body: (200, payload, 0.0))
    policy = OpenAIPolicy("m", server.url)
    env = gym.make("mosaic/All-v0")
    _, info = env.reset(seed=0)
    text = policy.act(info["messages"], info["tools"], info)
    assert text == ""
    assert policy.stats.malformed == 1
    _, _, _, _, info = env.step(text)
    assert info["ledger"][-1].kind == "format_error"
    env.close()


def test_server_side_tool_calls_are_rendered_back(serve):
    call = {"id": "c", "type": "function",
            "function": {"name": "refusal_tool", "arguments": '{"reason": "no"}'}}
    server = serve(lambda body: (200, chat_reply(None, tool_calls=[call]), 0.0))
    text = OpenAIPolicy("m", server.url).act(MESSAGES, TOOLS)
    assert text == '<tool_call>{"name": "refusal_tool", "arguments": {"reason": "no"}}' \
                   '</tool_call>'


def test_act_batch_is_concurrent_and_ordered(serve):
    def reply(body):
        return 200, chat_reply("echo:" + body["messages"][-1]["content"]), 0.3

    server = serve(reply)
    policy = OpenAIPolicy("m", server.url, concurrency=6)
    batch = [([{"role": "user", "content": str(i)}], TOOLS) for i in range(6)]
    start = time.monotonic()
    out = policy.act_batch(batch)
    elapsed = time.monotonic() - start
    assert out == [f"echo:{i}" for i in range(6)]
    assert server.max_in_flight > 1
    assert elapsed < 6 * 0.3  # sequential would take at least 1.8 s
    assert policy.act_batch([]) == []


def test_seeds_follow_episodes_and_batches(serve):
    server = serve(lambda body: (200, chat_reply("x"), 0.0))
    policy = OpenAIPolicy("m", server.url, sampling={"seed": 0})
    policy.reset(None, seed=1)
    policy.act(MESSAGES, TOOLS)
    policy.act(MESSAGES, TOOLS)
    policy.reset(None, seed=1)
    policy.act(MESSAGES, TOOLS)
    policy.act_batch([(MESSAGES, TOOLS)] * 3)
    seeds = [r["body"]["seed"] for r in server.requests]
    assert seeds[0] == seeds[2] and seeds[0] != seeds[1]  # replay after reset
    assert len(set(seeds[3:])) == 3  # group members are distinct samples
    unseeded = OpenAIPolicy("m", server.url, sampling={"temperature": 1.0})
    unseeded.act(MESSAGES, TOOLS)
    assert "seed" not in server.requests[-1]["body"]


def test_models_endpoint(serve):
    server = serve(lambda body: (200, {"object": "list", "data": [{"id": "tiny"}]}, 0.0))
    assert OpenAIPolicy("tiny", server.url).models() == ["tiny"]
    assert server.requests[0]["path"] == "/v1/models"


def test_plays_a_whole_episode(serve):
    from mosaic_gym.envs.registration import make_env
    from mosaic_gym.rollout import EpisodeSpec, play

    server = serve(lambda body: (200, chat_reply(REFUSAL), 0.0))
    env = make_env("mosaic/All-v0")
    base = env.unwrapped
    spec = EpisodeSpec(base.pool[0].id, None, 0)
    record = play(base, OpenAIPolicy("m", server.url), spec)
    env.close()
    assert record.outcome.refused is True
    assert record.outcome.refusal_step == 1
    sent = server.requests[0]["body"]
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert {t["function"]["name"] for t in sent["tools"]} >= {"refusal_tool"}


@pytest.mark.parametrize("kwargs", [
    {"model": "", "base_url": "http://127.0.0.1:1"},
    {"model": "m", "base_url": "127.0.0.1:8000"},
    {"model": "m", "base_url": "http://127.0.0.1:1", "timeout": 0},
    {"model": "m", "base_url": "http://127.0.0.1:1", "concurrency": 0},
])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        OpenAIPolicy(**kwargs)


def test_recipe_builds_the_openai_policy(serve, tmp_path):
    recipes = pytest.importorskip("mosaic_gym.agent.recipes")
    server = serve(lambda body: (200, chat_reply(REFUSAL), 0.0))
    path = tmp_path / "served.yaml"
    path.write_text(f"""
name: served-tiny
model: tiny
backend: openai
base_url: {server.url}
chat_template_kwargs: {{enable_thinking: false}}
sampling: {{temperature: 0.5, top_k: 7, max_new_tokens: 20, seed: 3}}
options: {{timeout: 5, concurrency: 2}}
""")
    policy = recipes.load_policy(str(path))
    assert isinstance(policy, OpenAIPolicy) and policy.name == "served-tiny"
    assert policy.act(MESSAGES, TOOLS) == REFUSAL
    body = server.requests[0]["body"]
    assert (body["model"], body["temperature"], body["top_k"], body["max_tokens"]) == (
        "tiny", 0.5, 7, 20)
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
