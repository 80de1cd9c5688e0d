"""Policy backed by any OpenAI-compatible chat server (``vllm serve``, and the like).

The environment's chat ``messages`` and ``tools`` go to ``POST {base_url}/chat/completions``;
the server applies the model's chat template and samples; the raw assistant text comes back
and the environment parses it as MOSAIC text. Server-side tool-call parsing is not used
(requests carry ``tool_choice: "none"``), so what the model wrote reaches our parser as is.

Robustness:

* every request has a timeout; connection failures, timeouts, HTTP 408/429/5xx are retried
  with exponential backoff, then raise :class:`ServerUnavailableError` naming the URL (never
  a hang);
* other HTTP errors (a wrong model name, a bad request) raise :class:`OpenAIBackendError`
  with the server's message, except a prompt longer than the model's context, which ends
  that turn as empty text;
* a malformed or empty answer becomes the empty string, which the environment counts as a
  format error.

Transport: the ``openai`` SDK (the ``vllm`` extra), its ``OpenAI`` client with its own HTTP
pool, timeouts and typed errors (``APIStatusError``, ``APIConnectionError``,
``APITimeoutError``). The retry loop stays here rather than in the SDK (``max_retries=0``):
it decides what is worth retrying for a model server (409/425 as well as 429/5xx, never a
wrong model name), applies its own backoff, and counts retries in :class:`ServerStats`,
which the benchmarks report. Replies are read as raw JSON (``cast_to=httpx.Response``), not
as the SDK's typed ``ChatCompletion``, because a malformed answer from a half-working
server must become a format error of that turn, not a validation exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mosaic_gym.core.seeding import derive_seed
from mosaic_gym.errors import OpenAIBackendError, ServerUnavailableError

__all__ = [
    "OpenAIBackendError",
    "OpenAIPolicy",
    "ServerStats",
    "ServerUnavailableError",
    "derive_seed",
    "to_server_messages",
]

#: Our names for OpenAI's parameters (every other sampling key is sent as it is).
_RENAMED = {"max_new_tokens": "max_tokens"}
#: Retried HTTP statuses: the server is busy, starting or failing transiently.
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: Phrases of a "prompt too long for the model" answer (vLLM, OpenAI).
_CONTEXT_PHRASES = ("maximum context length", "context length", "too long",
                    "max_model_len", "maximum model length")





@dataclass
class ServerStats:
    """Counters of one policy's traffic (read by benchmarks and tests)."""

    requests: int = 0
    retries: int = 0
    malformed: int = 0
    context_overflows: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def to_server_messages(messages: Sequence[Mapping[str, Any]], *,
                       keep_tool_calls: bool = False) -> list[dict[str, Any]]:
    """The environment's chat in the shape an OpenAI-compatible server accepts.

    An assistant turn's ``content`` already holds the model's full MOSAIC text (its tool
    call included), so by default the structured ``tool_calls`` the environment adds for
    bookkeeping are dropped: most chat templates would otherwise render the call twice.
    With ``keep_tool_calls`` they are kept, their arguments serialised to a JSON string as
    the OpenAI format requires.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        item: dict[str, Any] = {"role": role, "content": "" if content is None else content}
        if role == "assistant" and keep_tool_calls and message.get("tool_calls"):
            item["tool_calls"] = [
                {"id": call.get("id", f"call_{i}"), "type": "function",
                 "function": {"name": call["function"]["name"],
                              "arguments": _arguments_text(call["function"].get("arguments"))}}
                for i, call in enumerate(message["tool_calls"])]
        elif role == "tool":
            item["tool_call_id"] = message.get("tool_call_id") or "call"
            if message.get("name"):
                item["name"] = message["name"]
        out.append(item)
    return out


class OpenAIPolicy:
    """A :class:`~mosaic_gym.agent.baselines.Policy` served over the OpenAI chat API.

    Args:
        model: the model name the server knows (``vllm serve MODEL`` serves it as MODEL, or
            as ``--served-model-name``).
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (a missing ``/v1`` is
            added).
        sampling: ``temperature``, ``top_p``, ``max_new_tokens`` (or ``max_tokens``),
            ``seed``, ``stop``; other keys (``top_k``, ``min_p``,
            ``repetition_penalty``, ``chat_template_kwargs``...) are passed through for
            vLLM. With a ``seed``, each request carries a seed derived from it: in
            :meth:`act`, from (seed, episode seed, step), so an episode replays identically
            whatever else ran before; in :meth:`act_batch`, from (seed, "batch", call number,
            position), so the members of a group are different samples.
        api_key: bearer token; defaults to ``$OPENAI_API_KEY`` or none.
        timeout: seconds per request. max_retries: retries after the first attempt.
        backoff: first retry delay in seconds, doubled each retry.
        concurrency: parallel requests in :meth:`act_batch`.
        send_tools: include the tool schemas so the chat template can show them.
        keep_tool_calls: see :func:`to_server_messages`.
    """

    def __init__(self, model: str, base_url: str, sampling: Mapping[str, Any] | None = None,
                 api_key: str | None = None, *, timeout: float = 120.0, max_retries: int = 4,
                 backoff: float = 0.5, concurrency: int = 8, send_tools: bool = True,
                 keep_tool_calls: bool = False, name: str | None = None) -> None:
        if not model:
            raise ValueError("OpenAIPolicy needs a model name")
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if timeout <= 0 or max_retries < 0 or backoff < 0 or concurrency < 1:
            raise ValueError("timeout > 0, max_retries >= 0, backoff >= 0, concurrency >= 1")
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else root + "/v1"
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = float(timeout)
        try:
            import httpx
            import openai
        except ImportError:
            from mosaic_gym.errors import MissingExtraError

            raise MissingExtraError("vllm", "openai", "the OpenAI-compatible backend") from None
        self._openai = openai
        # A local server is never reached through an HTTP proxy set in the environment.
        local = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
        # The low-level post/get calls carry no auth of their own, so the header is set per
        # request; a local vLLM wants no key, and then no Authorization header is sent.
        self._headers: dict[str, Any] = {
            "Authorization": f"Bearer {self.api_key}" if self.api_key else openai.Omit()}
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key or "EMPTY", timeout=self.timeout,
            max_retries=0, http_client=httpx.Client(trust_env=not local, timeout=self.timeout))
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.concurrency = int(concurrency)
        self.send_tools = send_tools
        self.keep_tool_calls = keep_tool_calls
        self.name = name or f"openai:{model}"
        self.params, self.seed = self._sampling(sampling or {})
        self.stats = ServerStats()
        self._episode_seed: int | None = None
        self._step = 0
        self._batches = 0

    # -- Policy protocol -----------------------------------------------------------
    def reset(self, scenario: Any = None, seed: int | None = None) -> None:
        """Start an episode: remember its seed for per-turn sampling seeds."""
        self._episode_seed = seed
        self._step = 0

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        """The next assistant turn as raw text."""
        seed = None if self.seed is None else derive_seed(self.seed, self._episode_seed,
                                                           self._step)
        self._step += 1
        return self._complete(messages, tools, seed)

    def act_batch(self, batch: Sequence[tuple[Sequence[Mapping[str, Any]],
                                              Sequence[Mapping[str, Any]]]]) -> list[str]:
        """One turn for each ``(messages, tools)``, requested concurrently, in order."""
        items = list(batch)
        if not items:
            return []
        call = self._batches
        self._batches += 1
        seeds = [None if self.seed is None else derive_seed(self.seed, "batch", call, i)
                 for i in range(len(items))]
        if len(items) == 1 or self.concurrency == 1:
            return [self._complete(m, t, s) for (m, t), s in zip(items, seeds, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            futures = [pool.submit(self._complete, m, t, s)
                       for (m, t), s in zip(items, seeds, strict=True)]
            return [future.result() for future in futures]

    # -- helpers -------------------------------------------------------------------
    def models(self) -> list[str]:
        """Model ids the server lists at ``/v1/models`` (raises when it cannot be reached)."""
        document = self._request("GET", "/models", None)
        if not isinstance(document, dict):
            raise OpenAIBackendError(f"{self.base_url}/models did not answer JSON")
        return [item.get("id") for item in document.get("data", []) if isinstance(item, dict)]

    @staticmethod
    def _sampling(sampling: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
        params: dict[str, Any] = {}
        seed = None
        for key, value in sampling.items():
            if value is None:
                continue
            if key == "seed":
                seed = int(value)
            else:
                params[_RENAMED.get(key, key)] = value
        return params, seed

    def _payload(self, messages: Sequence[Mapping[str, Any]],
                 tools: Sequence[Mapping[str, Any]], seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_server_messages(messages, keep_tool_calls=self.keep_tool_calls),
            **self.params,
        }
        if self.send_tools and tools:
            body["tools"] = list(tools)
            body["tool_choice"] = "none"  # no server-side parsing: our env parses the text
        if seed is not None:
            body["seed"] = seed
        return body

    def _complete(self, messages: Sequence[Mapping[str, Any]],
                  tools: Sequence[Mapping[str, Any]], seed: int | None) -> str:
        start = time.perf_counter()
        try:
            document = self._request("POST", "/chat/completions",
                                     self._payload(messages, tools, seed))
        except _ContextOverflow:
            self.stats.add(requests=1, context_overflows=1,
                           seconds=time.perf_counter() - start)
            return ""
        usage = document.get("usage") if isinstance(document, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        self.stats.add(requests=1, seconds=time.perf_counter() - start,
                       prompt_tokens=int(usage.get("prompt_tokens") or 0),
                       completion_tokens=int(usage.get("completion_tokens") or 0))
        text = _assistant_text(document)
        if text is None:
            self.stats.add(malformed=1)
            return ""
        return text

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        import httpx

        openai = self._openai
        url = self.base_url + path
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                options: Any = {"headers": self._headers}
                if method == "GET":
                    response = self._client.get(path, cast_to=httpx.Response, options=options)
                else:
                    response = self._client.post(path, body=body, cast_to=httpx.Response,
                                                 options=options)
                raw = response.content
            except openai.APIStatusError as exc:
                message = _error_message(exc)
                if exc.status_code in _RETRY_STATUS:
                    last = f"HTTP {exc.status_code}: {message}"
                    continue
                if exc.status_code == 400 and any(p in message.lower()
                                                  for p in _CONTEXT_PHRASES):
                    raise _ContextOverflow(message) from None
                raise OpenAIBackendError(
                    f"{method} {url} failed with HTTP {exc.status_code}: {message}") from None
            except (openai.APIConnectionError, httpx.HTTPError, OSError) as exc:
                # APITimeoutError is an APIConnectionError; the cause names what happened.
                reason = exc.__cause__ or exc
                last = f"{type(reason).__name__}: {reason}"
                continue
            try:
                return json.loads(raw)
            except ValueError:
                return None  # a reply that is not JSON: treated as a malformed answer
        raise ServerUnavailableError(
            f"no usable answer from the OpenAI-compatible server at {self.base_url} after "
            f"{self.max_retries + 1} attempt(s) (timeout {self.timeout:g}s each); last error: "
            f"{last}. Is the server running (e.g. `vllm serve MODEL --port PORT`) and is "
            f"base_url right?")


class _ContextOverflow(Exception):
    """The prompt no longer fits the model's context."""


def _error_message(exc: Any) -> str:
    """The server's own words from an SDK ``APIStatusError`` (its JSON ``error.message``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:500]
        return str(error)[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    response = getattr(exc, "response", None)
    with contextlib.suppress(Exception):
        text = response.text.strip() if response is not None else ""
        if text:
            return text[:500]
    return str(getattr(exc, "message", exc))[:500]


def _assistant_text(document: Any) -> str | None:
    """The first choice's text; ``None`` when the reply is malformed or empty."""
    try:
        message = document["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str) and content.strip():
        return content
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        # A server started with tool parsing on: rebuild the MOSAIC call from its parse.
        rendered = []
        for call in calls:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            arguments = function.get("arguments")
            with contextlib.suppress(ValueError):
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            rendered.append("<tool_call>" + json.dumps(
                {"name": function.get("name"), "arguments": arguments},
                ensure_ascii=False) + "</tool_call>")
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        prefix = f"<think>{reasoning}</think>" if isinstance(reasoning, str) and reasoning else ""
        return prefix + "".join(rendered)
    return None
