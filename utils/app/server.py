"""interactive.py's web server (standard library only): the page, three.js from ``web/node_modules`` (installed from
the npm registry by install_environment.sh), and a small JSON API over an :class:`InteractiveSession`.

    GET  /                      the page (web/index.html, web/app.js, web/style.css)
    GET  /vendor/<file>         three.js's build files; /vendor/addons/<path> its examples/jsm modules
    GET  /api/mesh              {"vertices": [x0, y0, z0, …], "faces": [a0, b0, c0, …], "colours": …}
    POST /api/predict           {"clicks": [[vertex, positive], …]} → {"probability": [...], "seconds", …}
    POST /api/export            {"clicks", "otsu", "segment", "format"} → {"paths": {...}, "selected_faces"}

A malformed request gets HTTP 400 with {"error": "<one line>"}; the server keeps serving. Decoder calls are
serialised by a lock (one model, one CPU/GPU).

Only this machine's pages may use it: the ``Host`` header must name the address served (loopback names, the
``--host`` address, and with ``--host 0.0.0.0`` any IP address) — so a DNS-rebinding page cannot read the mesh — a
request carrying an ``Origin`` must come from the page itself (same host), and a POST must say ``Content-Type:
application/json`` (a cross-site form cannot), else 403 / 415.
Sockets time out after SOCKET_TIMEOUT seconds and the listen backlog holds LISTEN_BACKLOG connections.
"""
from __future__ import annotations

import ipaddress
import json
import mimetypes
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Tuple

from utils.app.session import InteractiveSession, RequestError
from utils.errors import InputError, describe_os_error
from utils.paths import repo_path

WEB_DIR = repo_path("web")
THREE_DIR = os.path.join(WEB_DIR, "node_modules", "three")
PAGE_FILES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
MAX_BODY = 1 << 20  # bytes of a request body
SOCKET_TIMEOUT = 30.0  # seconds a client may take to send its request
LISTEN_BACKLOG = 128  # connections waiting to be accepted (the standard library's 5 resets bursts of clicks)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def check_web_assets() -> None:
    """InputError if three.js is not installed (install_environment.sh runs ``npm ci`` in web/)."""
    if not os.path.isfile(os.path.join(THREE_DIR, "build", "three.module.js")):
        raise InputError(f"three.js is missing ({THREE_DIR}): run `bash install_environment.sh` (it needs npm) or "
                         f"`npm ci --prefix web`")


def _inside(root: str, relative: str) -> Optional[str]:
    """The file ``root/relative`` if it exists and does not leave ``root``, else None."""
    path = os.path.realpath(os.path.join(root, relative.lstrip("/")))
    if path.startswith(os.path.realpath(root) + os.sep) and os.path.isfile(path):
        return path
    return None


def _host_name(value: str) -> str:
    """The name part of a ``Host`` header or an origin's authority ("[::1]:8000" → "::1"), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def make_handler(session: InteractiveSession, quiet: bool = True, host: str = "127.0.0.1") -> type:
    lock = threading.Lock()
    mesh_json = json.dumps(session.mesh_payload(), allow_nan=False).encode()
    served = {name.lower() for name in LOOPBACK_NAMES}
    everywhere = host in ("", "0.0.0.0", "::")  # every interface: reached by any of this machine's addresses
    if not everywhere:
        served.add(host.lower())

    def is_served(name: str) -> bool:
        """Loopback names, the bound address, and on every interface any IP address (a rebinding page comes by
        a DNS name, never by an address)."""
        if name in served:
            return True
        if everywhere:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    class Handler(BaseHTTPRequestHandler):
        server_version = "iSeg"
        timeout = SOCKET_TIMEOUT  # applied to the connection's socket

        def _refusal(self, post: bool) -> Optional[Tuple[int, str]]:
            """(status, reason) if the request may not be answered: a foreign Host or Origin, or a POST that is not
            JSON."""
            name = _host_name(self.headers.get("Host", ""))
            if not is_served(name):
                return HTTPStatus.FORBIDDEN, f"this server answers requests for {sorted(served)} only, not {name!r}"
            origin = self.headers.get("Origin")
            if origin is not None:  # the page itself: the same scheme and host the request was sent to
                scheme, _, authority = origin.partition("://")
                if scheme != "http" or _host_name(authority) != name:
                    return HTTPStatus.FORBIDDEN, f"requests from other sites are refused ({origin})"
            kind = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if post and kind != "application/json":
                return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "POST bodies must be Content-Type: application/json"
            return None

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
            if not quiet:
                super().log_message(format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: object) -> None:
            self._send(status, json.dumps(payload, allow_nan=False).encode(), "application/json")

        def _file(self, path: Optional[str]) -> None:
            if path is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"not found: {self.path}"})
                return
            kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
            if path.endswith(".js"):
                kind = "text/javascript"
            with open(path, "rb") as handle:
                self._send(HTTPStatus.OK, handle.read(), kind)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            refused = self._refusal(post=False)
            if refused:
                self._json(refused[0], {"error": refused[1]})
                return
            route = self.path.split("?", 1)[0]
            if route in PAGE_FILES:
                self._file(_inside(WEB_DIR, PAGE_FILES[route]))
            elif route.startswith("/vendor/addons/"):
                self._file(_inside(os.path.join(THREE_DIR, "examples", "jsm"), route[len("/vendor/addons/"):]))
            elif route.startswith("/vendor/"):
                self._file(_inside(os.path.join(THREE_DIR, "build"), route[len("/vendor/"):]))
            elif route == "/api/mesh":
                self._send(HTTPStatus.OK, mesh_json, "application/json")
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"not found: {route}"})

        def do_POST(self) -> None:  # noqa: N802
            routes: Dict[str, Callable[[object], Dict[str, object]]] = {
                "/api/predict": session.predict_request, "/api/export": session.export_request}
            route = self.path.split("?", 1)[0]
            refused = self._refusal(post=True)
            if refused:
                self._json(refused[0], {"error": refused[1]})
                return
            if route not in routes:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"not found: {route}"})
                return
            status, payload = self._answer(routes[route])
            self._json(status, payload)

        def _answer(self, action: Callable[[object], Dict[str, object]]) -> Tuple[int, Dict[str, object]]:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                return HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"}
            if not 0 < length <= MAX_BODY:
                return HTTPStatus.BAD_REQUEST, {"error": f"the request body must have 1 to {MAX_BODY} bytes"}
            try:
                raw = self.rfile.read(length)
            except OSError:  # the client stopped sending (time-out) or went away
                return HTTPStatus.REQUEST_TIMEOUT, {"error": f"the request body did not arrive in {SOCKET_TIMEOUT} s"}
            if len(raw) < length:
                return HTTPStatus.BAD_REQUEST, {"error": f"the request body has {len(raw)} of {length} bytes"}
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                return HTTPStatus.BAD_REQUEST, {"error": "the request body is not JSON"}
            try:
                with lock:
                    return HTTPStatus.OK, action(body)
            except RequestError as err:
                return HTTPStatus.BAD_REQUEST, {"error": str(err)}
            except InputError as err:
                return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(err)}
            except OSError as err:  # an export the file system refused (full, read-only): the earlier files stay
                return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"cannot write: {describe_os_error(err)}"}
            except Exception as err:  # a request the checks let through must still get a reply, not a reset
                return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"could not answer: {type(err).__name__}: {err}"}

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG


def make_server(session: InteractiveSession, host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = True) -> ThreadingHTTPServer:
    """A server bound to (host, port) (port 0: any free port); call ``serve_forever()`` on it."""
    try:
        server = _Server((host, port), make_handler(session, quiet, host))
    except OSError as err:
        raise InputError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    server.daemon_threads = True
    return server
