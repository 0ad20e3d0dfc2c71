"""`FakeOpenAIServer`: a local OpenAI-compatible HTTP server for tests (stdlib only).

It listens on 127.0.0.1 at an ephemeral port and serves, under :attr:`~FakeOpenAIServer.base_url`
(``http://127.0.0.1:PORT/v1``):

- ``POST /v1/chat/completions``, plain or streamed (``stream: true``, server-sent events);
- ``POST /v1/responses`` (Responses API), plain or streamed, enough for the OpenAI Agents SDK;
  ``previous_response_id`` continues a stored response's conversation, as on the real server;
- ``GET /v1/models``.

Replies are deterministic and reflect what the server was sent, so a test can check that the
whole history arrived: by default ``"echo: <last user text> (history: <k> messages)"``. Pass
``responder`` (a function of the conversation as chat message dicts) to reply otherwise. Every
POST body is kept in :attr:`~FakeOpenAIServer.requests`.

A responder that raises makes the server answer 500, which the ``openai`` package retries
(``max_retries``) before raising; the exception is kept in :attr:`~FakeOpenAIServer.errors`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, cast
from urllib.parse import urlsplit

from ailib.messages import Message
from ailib.window import message_text

__all__ = ("FakeOpenAIServer", "Responder", "echo_reply")

Responder = Callable[[list[Message]], str]

_OWNER: Final = "ailib-fake"


def echo_reply(messages: list[Message]) -> str:
    """The default reply: the last user text and how many messages the conversation had."""
    users = [m for m in messages if m.get("role") == "user"]
    last = message_text(users[-1]) if users else ""
    return f"echo: {last} (history: {len(messages)} messages)"


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class FakeOpenAIServer:
    """An OpenAI-compatible server in a background thread; use it as a context manager.

    ``api_key``, when given, is required as the bearer token (401 otherwise), so a test can
    check that a client sends its key; by default any key, or none, is accepted.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        model: str = "fake-model",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.responder: Responder = responder or echo_reply
        self.model = model
        self._api_key = api_key
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._log: list[tuple[str, str]] = []
        self._errors: list[BaseException] = []
        self._histories: dict[str, list[Message]] = {}
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer(self._address, _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeOpenAIServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``OPENAI_BASE_URL`` or ``base_url=``."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # -- what was received ----------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every POST body received, oldest first."""
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def log(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received, oldest first."""
        with self._lock:
            return list(self._log)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while answering (a failing responder, say)."""
        with self._lock:
            return list(self._errors)

    def reset(self) -> None:
        """Forget the requests, errors and stored responses received so far."""
        with self._lock:
            self._requests.clear()
            self._log.clear()
            self._errors.clear()
            self._histories.clear()

    def __repr__(self) -> str:
        state = self.base_url if self._httpd is not None else "stopped"
        return f"<FakeOpenAIServer {state} requests={len(self._requests)}>"

    # -- used by the handler --------------------------------------------------------------

    def _record(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        with self._lock:
            self._log.append((method, path))
            if body is not None:
                self._requests.append(copy.deepcopy(body))

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _check_key(self, authorization: str | None) -> None:
        if self._api_key is not None and authorization != f"Bearer {self._api_key}":
            raise _HTTPError(401, "Incorrect API key provided.", "authentication_error")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _reply(self, messages: list[Message]) -> str:
        reply = self.responder(copy.deepcopy(messages))
        if not isinstance(reply, str):
            raise TypeError(f"responder must return str, got {type(reply).__name__}")
        return reply

    def _response_history(self, body: dict[str, Any]) -> list[Message]:
        previous_id = body.get("previous_response_id")
        history: list[Message] = []
        if isinstance(body.get("instructions"), str):
            history.append({"role": "system", "content": body["instructions"]})
        if previous_id is not None:
            with self._lock:
                earlier = self._histories.get(str(previous_id))
            if earlier is None:
                raise _HTTPError(404, f"Previous response with id '{previous_id}' not found.")
            history.extend(m for m in earlier if m.get("role") != "system")
        history.extend(_input_messages(body.get("input", [])))
        return history

    def _store_history(self, response_id: str, history: list[Message]) -> None:
        with self._lock:
            self._histories[response_id] = history


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1"

    @property
    def fake(self) -> FakeOpenAIServer:
        return cast(_HTTPServer, self.server).fake

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a test's output should not fill with access-log lines."""

    def do_GET(self) -> None:
        path = _route(self.path)
        self.fake._record("GET", path, None)
        try:
            self.fake._check_key(self.headers.get("Authorization"))
            if path == "/models":
                self._send_json(200, {"object": "list", "data": [self._model(self.fake.model)]})
            elif path.startswith("/models/"):
                self._send_json(200, self._model(path.removeprefix("/models/")))
            else:
                raise _HTTPError(404, f"Unknown URL: GET {self.path}")
        except _HTTPError as exc:
            self._send_error(exc)

    def do_POST(self) -> None:
        path = _route(self.path)
        try:
            body = self._read_json()
            self.fake._record("POST", path, body)
            self.fake._check_key(self.headers.get("Authorization"))
            if path == "/chat/completions":
                self._chat_completions(body)
            elif path == "/responses":
                self._responses(body)
            else:
                raise _HTTPError(404, f"Unknown URL: POST {self.path}")
        except _HTTPError as exc:
            self._send_error(exc)
        except Exception as exc:
            self.fake._record_error(exc)
            self._send_error(_HTTPError(500, f"FakeOpenAIServer failed: {exc!r}", "server_error"))

    # -- endpoints ------------------------------------------------------------------------

    def _chat_completions(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise _HTTPError(400, "'messages' must be a list of message objects.")
        reply = self.fake._reply(messages)
        model = str(body.get("model") or self.fake.model)
        completion_id = self.fake._new_id("chatcmpl")
        created = int(time.time())
        usage = {
            "prompt_tokens": sum(_count(message_text(m)) for m in messages),
            "completion_tokens": _count(reply),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {"id": completion_id, "created": created, "model": model}
        if not body.get("stream"):
            self._send_json(
                200,
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**head, "object": "chat.completion.chunk", "choices": [choice]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in _pieces(reply)]
        events.append(chunk({}, "stop"))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            events.append(
                {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        self._send_events((None, event) for event in events)

    def _responses(self, body: dict[str, Any]) -> None:
        history = self.fake._response_history(body)
        reply = self.fake._reply(history)
        response_id = self.fake._new_id("resp")
        item_id = self.fake._new_id("msg")
        self.fake._store_history(response_id, [*history, {"role": "assistant", "content": reply}])
        input_tokens = sum(_count(message_text(m)) for m in history)
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": _count(reply),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + _count(reply),
        }
        part = {"type": "output_text", "text": reply, "annotations": [], "logprobs": []}
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
        created = int(time.time())

        def response(status: str, output: list[Any], final: bool) -> dict[str, Any]:
            return _response_object(
                body,
                response_id,
                created,
                self.fake.model,
                status,
                output,
                usage if final else None,
            )

        if not body.get("stream"):
            self._send_json(200, response("completed", [item], final=True))
            return

        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": response("in_progress", [], False)},
            {"type": "response.in_progress", "response": response("in_progress", [], False)},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
            *(
                {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
                for piece in _pieces(reply)
            ),
            {"type": "response.output_text.done", **where, "text": reply, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": response("completed", [item], True)},
        ]
        self._send_events(
            (event["type"], {**event, "sequence_number": number})
            for number, event in enumerate(events)
        )

    # -- HTTP plumbing --------------------------------------------------------------------

    @staticmethod
    def _model(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 0, "owned_by": _OWNER}

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise _HTTPError(400, f"The request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _HTTPError(400, "The request body must be a JSON object.")
        return body

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, exc: _HTTPError) -> None:
        error = {"message": str(exc), "type": exc.kind, "param": None, "code": None}
        self._send_json(exc.status, {"error": error})

    def _send_events(self, events: Iterable[tuple[str | None, dict[str, Any]]]) -> None:
        """Server-sent events, the body ending when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for name, data in events:
                prefix = f"event: {name}\n" if name else ""
                self.wfile.write(f"{prefix}data: {json.dumps(data)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


def _route(raw_path: str) -> str:
    """The endpoint path without a ``/v1`` prefix, query or trailing slash."""
    path = urlsplit(raw_path).path.rstrip("/")
    return path.removeprefix("/v1") or "/"


def _input_messages(items: object) -> list[Message]:
    """Responses API ``input`` as chat-style ``{"role", "content"}`` dicts, for the responder."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise _HTTPError(400, "'input' must be a string or a list of input items.")
    messages: list[Message] = []
    for item in items:
        if not isinstance(item, dict):
            raise _HTTPError(400, "Every input item must be an object.")
        kind = item.get("type", "message")
        if "role" in item:
            messages.append({"role": item["role"], "content": message_text(item)})
        elif kind == "function_call":
            call = f"{item.get('name')}({item.get('arguments', '')})"
            messages.append({"role": "assistant", "content": call})
        elif kind == "function_call_output":
            output = item.get("output", "")
            text = output if isinstance(output, str) else message_text({"content": output})
            messages.append({"role": "tool", "content": text})
        else:
            messages.append({"role": str(kind), "content": message_text(item)})
    return messages


def _response_object(
    body: dict[str, Any],
    response_id: str,
    created: int,
    default_model: str,
    status: str,
    output: list[Any],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    tool_choice = body.get("tool_choice")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "model": str(body.get("model") or default_model),
        "status": status,
        "output": output,
        "instructions": body.get("instructions"),
        "previous_response_id": body.get("previous_response_id"),
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "tool_choice": tool_choice if isinstance(tool_choice, str) else "auto",
        "tools": [],
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "error": None,
        "incomplete_details": None,
        "usage": usage,
    }


def _pieces(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back to exactly ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def _count(text: str) -> int:
    return len(text.split())
