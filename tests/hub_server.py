"""A real HTTP server on 127.0.0.1 that answers like the Hugging Face Hub's file endpoints.

    HEAD/GET /{owner}/{name}/resolve/{revision}/{path}            (models)
    HEAD/GET /datasets/{owner}/{name}/resolve/{revision}/{path}   (data sets)

Responses carry ETag (the file's sha256, quoted), X-Repo-Commit and Content-Length, as the Hub's do;
unknown repos, revisions and files get 404 with X-Error-Code RepoNotFound / RevisionNotFound /
EntryNotFound. Every request is counted, so tests can prove cache hits.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str, str], bytes] = {}  # (repo_type, repo, revision, path) -> data
        self.requests: Counter[tuple[str, str]] = Counter()  # (method, url path)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, repo: str, path: str, data: bytes, *, repo_type: str = "model", revision: str = "main") -> None:
        self.files[(repo_type, repo, revision, path)] = data

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(n for (m, p), n in self.requests.items() if (method in (None, m)) and contains in p)

    def _lookup(self, url_path: str) -> tuple[int, dict[str, str], bytes]:
        parts = unquote(url_path.split("?", 1)[0]).lstrip("/").split("/")
        repo_type = "model"
        if parts and parts[0] == "datasets":
            repo_type, parts = "dataset", parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            return 404, {"X-Error-Code": "RepoNotFound"}, b"not found"
        repo, revision, path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        keys = [k for k in self.files if k[0] == repo_type and k[1] == repo]
        if not keys:
            return 404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found"
        if not any(k[2] == revision for k in keys):
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"Revision not found"
        data = self.files.get((repo_type, repo, revision, path))
        if data is None:
            return 404, {"X-Error-Code": "EntryNotFound"}, b"Entry not found"
        commit = hashlib.sha1(f"{repo_type}/{repo}@{revision}".encode()).hexdigest()
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": commit}
        return 200, headers, data

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, with_body: bool) -> None:
                hub.requests[(self.command, self.path)] += 1
                status, headers, body = hub._lookup(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def do_GET(self) -> None:
                self._answer(with_body=True)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
