"""A local OpenAI-compatible HTTP server for tests: a scripted model on 127.0.0.1.

Real HTTP on an ephemeral port, so the real `openai` client talks to it unpatched. The script is
a list of steps, one per request to `POST /v1/chat/completions`: a reply (status, JSON body), or
a function of the request body returning one, so a scripted model can react to the tool results
it was sent. A body given as bytes is sent as it is (garbage). Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

Reply = tuple[int, Union[dict[str, Any], bytes]]
Step = Union[Reply, Callable[[dict[str, Any]], Reply]]


def completion(message: dict[str, Any], *, finish_reason: str, usage: tuple[int, int]) -> Reply:
    """A 200 chat.completion body around one assistant message."""
    prompt, completion_tokens = usage
    return 200, {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted-model",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                  "total_tokens": prompt + completion_tokens},
    }


def tool_calls(*calls: tuple[str, Any], usage: tuple[int, int] = (100, 20)) -> Reply:
    """An assistant turn calling tools; dict arguments are JSON-encoded, strings sent raw."""
    encoded = [
        {"id": f"call_{index}", "type": "function",
         "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}
        for index, (name, arguments) in enumerate(calls)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": encoded}
    return completion(message, finish_reason="tool_calls", usage=usage)


def text(content: str, *, usage: tuple[int, int] = (100, 20)) -> Reply:
    """An assistant turn that only talks."""
    return completion({"role": "assistant", "content": content}, finish_reason="stop", usage=usage)


def error(status: int, message: str = "scripted failure") -> Reply:
    """An error reply shaped like the real API's."""
    return status, {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def tool_results(body: dict[str, Any]) -> dict[str, str]:
    """The tool messages at the end of a request, by tool_call_id."""
    results = {}
    for message in reversed(body["messages"]):
        if message["role"] != "tool":
            break
        results[message["tool_call_id"]] = message["content"]
    return results


class LLMServer:
    """Serve a script of replies; `requests` holds every request body received."""

    def __init__(self, steps: list[Step]):
        self.steps = list(steps)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "LLMServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            index = len(self.requests) - 1
        if index >= len(self.steps):
            return error(400, f"the script has {len(self.steps)} steps; request {index + 1} was not expected")
        step = self.steps[index]
        return step(body) if callable(step) else step

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(*error(404, f"no route {self.path}"))
                    return
                self._send(*server._reply(json.loads(self.rfile.read(length))))

            def _send(self, status: int, payload: dict[str, Any] | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        return Handler
