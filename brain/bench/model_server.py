"""A small local HTTP server speaking enough of the Anthropic Messages and OpenAI Chat
Completions APIs for the real SDKs: it can answer, rate-limit, overload, fail, return
malformed answers, or hang, and it reports usage (with prompt caching) as the APIs do."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ModelServer:
    def __init__(self) -> None:
        self.modes: list[str] = []          # consumed one per request; empty = "ok"
        self.answer: dict[str, Any] = {}
        self.requests: list[tuple[str, dict]] = []
        self.authorizations: list[str | None] = []  # each request's credentials, as sent
        self._seen_prefixes: set[str] = set()
        self.hang_s = 5.0
        # Appended to the model asked for, as the real APIs name the dated snapshot that
        # answered (e.g. "-2025-08-07").
        self.snapshot = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                server.requests.append((self.path, body))
                server.authorizations.append(self.headers.get("authorization") or self.headers.get("x-api-key"))
                mode = server.modes.pop(0) if server.modes else "ok"
                if mode == "hang":
                    time.sleep(server.hang_s)
                    mode = "ok"
                if self.path.endswith("/messages"):
                    status, payload = server._anthropic(mode, body)
                else:
                    status, payload = server._openai(mode, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if status == 429:
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout under test): nobody to answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ModelServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --------------------------------------------------------------- Anthropic
    def _anthropic(self, mode: str, body: dict) -> tuple[int, dict]:
        if mode in ("rate_limit", "overloaded", "server_error"):
            status, kind = {"rate_limit": (429, "rate_limit_error"), "overloaded": (529, "overloaded_error"),
                            "server_error": (500, "api_error")}[mode]
            return status, {"type": "error", "error": {"type": kind, "message": mode.replace("_", " ")}}
        system = "".join(block["text"] for block in body.get("system", []))
        user = "".join(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
                       for m in body["messages"])
        prefix_tokens, user_tokens = len(system) // 4, len(user) // 4
        cached = system in self._seen_prefixes
        self._seen_prefixes.add(system)
        usage = {"input_tokens": user_tokens, "output_tokens": 40,
                 "cache_creation_input_tokens": 0 if cached else prefix_tokens,
                 "cache_read_input_tokens": prefix_tokens if cached else 0}
        answer = {"not": "the schema"} if mode == "malformed" else self.answer
        content = [{"type": "text", "text": json.dumps(answer)}]
        return 200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"] + self.snapshot,
                     "content": content, "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}

    # --------------------------------------------------------------- OpenAI
    def _openai(self, mode: str, body: dict) -> tuple[int, dict]:
        if mode in ("rate_limit", "overloaded", "server_error"):
            status = {"rate_limit": 429, "overloaded": 503, "server_error": 500}[mode]
            return status, {"error": {"message": mode, "type": mode, "code": None, "param": None}}
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        text = "{not json" if mode == "malformed" else json.dumps(self.answer)
        return 200, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                     "model": body["model"] + self.snapshot,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text, "refusal": None}}],
                     "usage": {"prompt_tokens": prompt, "completion_tokens": 30, "total_tokens": prompt + 30,
                               "prompt_tokens_details": {"cached_tokens": 0}}}
