"""The HTTP plumbing of ``gankit serve``: a standard-library threaded server and a small router.

Handlers take a :class:`Request` and return a :class:`Response`; they are plain functions a test can call
without a socket (:meth:`App.handle`). A bad request raises :class:`HTTPError` (or ValueError / a gankit
error, read as 400) and the client gets a JSON ``{"error": message}``; an unexpected exception gets a 500
with a one-line message, never a traceback (the traceback goes to the server's log).

What the server does against other pages and hostile run folders (the page itself inserts every name, caption
and message as text, never as HTML):

- every answer carries a Content-Security-Policy: scripts only from the server's own files (no inline script,
  no ``eval``), nothing loaded from elsewhere, no framing; a run's report (HTML made from a run folder) may run
  no script at all;
- a request whose ``Host`` header names another machine is refused (403): a web page that rebinds its own
  domain name to 127.0.0.1 (DNS rebinding) cannot read the API; IP addresses, ``localhost``, the ``--host``
  address, this machine's names and any ``--allow-host`` name are accepted;
- a POST must send ``Content-Type: application/json`` (415 otherwise): another site's page cannot post to the
  API without a CORS preflight, which this server never grants.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import socket
import sys
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from gankit.errors import GankitError

MAX_BODY = 256 * 1024  # bytes of a request body (a drawn target is a few kB)
MAX_QUERY = 8 * 1024  # characters of a query string
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCUMENT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)  # a report: inline CSS and PNG data URIs, no script


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise HTTPError(400, "the request body is not JSON") from None
        except RecursionError:
            raise HTTPError(400, "the request body nests too deeply") from None
        if not isinstance(value, dict):
            raise HTTPError(400, "the request body must be a JSON object")
        return value

    def text(self, name: str, default: str | None = None, max_length: int = 200) -> str:
        value = self.query.get(name, default)
        if value is None:
            raise HTTPError(400, f"missing parameter {name!r}")
        if len(value) > max_length:
            raise HTTPError(400, f"parameter {name!r} is longer than {max_length} characters")
        return value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int:
        text = self.text(name, None if default is None else str(default), 32)
        try:
            value = int(text)
        except ValueError:
            raise HTTPError(400, f"parameter {name!r} must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise HTTPError(400, f"parameter {name!r} must be in {low}..{high}, got {value}")
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in options:
            raise HTTPError(400, f"parameter {name!r} must be one of {', '.join(options)}, got {value!r}")
        return value


@dataclasses.dataclass
class Response:
    body: bytes
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> "Response":
        return cls(json.dumps(value, allow_nan=False).encode(), "application/json", status)

    @classmethod
    def document(cls, html: str) -> "Response":
        """An HTML page made from a run folder's contents: shown with no script allowed at all."""
        return cls(html.encode(), "text/html; charset=utf-8", headers={"Content-Security-Policy": DOCUMENT_POLICY})


Handler = Callable[[Request], Response]


class App:
    """Routes (method, exact path) to handlers."""

    def __init__(self):
        self.routes: dict[tuple[str, str], Handler] = {}
        self.models: list = []  # what the app serves (gankit serve prints where each came from)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method, path)] = handler
            return handler

        return register

    def handle(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            allowed = sorted(m for m, p in self.routes if p == request.path)
            if allowed:
                return Response.of_json(
                    {"error": f"{request.method} is not allowed here; use {', '.join(allowed)}"}, 405
                )
            return Response.of_json({"error": f"no such page: {request.path}"}, 404)
        try:
            return handler(request)
        except HTTPError as error:
            return Response.of_json({"error": error.message}, error.status)
        except (ValueError, KeyError, GankitError) as error:
            message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
            return Response.of_json({"error": message}, 400)
        except Exception as error:  # noqa: BLE001 - the client gets one line; the log gets the traceback
            traceback.print_exc(file=sys.stderr)
            return Response.of_json({"error": f"internal error ({type(error).__name__}); see the server's log"}, 500)


def parse_target(target: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(target)
    if len(parts.query) > MAX_QUERY:
        raise HTTPError(414, f"the query string is longer than {MAX_QUERY} characters")
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return urllib.parse.unquote(parts.path), query


def host_name(header: str) -> str:
    """The host part of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_checker(host: str, allowed: tuple[str, ...] = ()) -> Callable[[str | None], bool]:
    """Whether a request's ``Host`` header names this server: an IP address (a page cannot rebind those),
    ``localhost``, the listening address, this machine's names, or one of ``allowed``."""
    names = {"localhost", host.lower(), *(a.lower() for a in allowed)}
    for name in (socket.gethostname, socket.getfqdn):
        try:
            names.add(name().lower())
        except OSError:
            pass

    def check(header: str | None) -> bool:
        if not header:
            return False
        name = host_name(header)
        if name in names or name.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return False

    return check


def make_server(
    app: App, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True, allowed_hosts: tuple[str, ...] = ()
) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``app`` bound to (host, port); port 0 picks a free one. Requests whose
    ``Host`` header names another machine are refused (see the module's notes); ``allowed_hosts`` adds names
    (a reverse proxy's)."""
    host_ok = host_checker(host, allowed_hosts)

    class RequestHandler(BaseHTTPRequestHandler):
        server_version = "gankit"

        def respond(self, method: str) -> None:
            try:
                if not host_ok(self.headers.get("Host")):
                    raise HTTPError(
                        403,
                        f"this server does not answer to the host {self.headers.get('Host')!r}: open it "
                        "at the address gankit serve printed (or start it with --allow-host NAME)",
                    )
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if method == "POST" and content_type != "application/json":
                    raise HTTPError(415, "a POST must send Content-Type: application/json")
                path, query = parse_target(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise HTTPError(413, f"the request body is larger than {MAX_BODY} bytes")
                body = self.rfile.read(length) if length > 0 else b""
                response = app.handle(Request(method, path, query, body))
            except HTTPError as error:
                response = Response.of_json({"error": error.message}, error.status)
            except ValueError:
                response = Response.of_json({"error": "malformed request"}, 400)
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Referrer-Policy", "no-referrer")
                headers = {"Content-Security-Policy": PAGE_POLICY, "X-Frame-Options": "DENY", **response.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away (closed, or asked again) before the answer was written

        def do_GET(self):  # noqa: N802 - the http.server protocol
            self.respond("GET")

        def do_POST(self):  # noqa: N802
            self.respond("POST")

        def log_message(self, format, *args):  # noqa: A002
            if not quiet:
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    server = ThreadingHTTPServer((host, port), RequestHandler)
    server.daemon_threads = True
    return server
