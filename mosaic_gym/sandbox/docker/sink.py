"""The recording HTTP proxy of docker sandboxes (one per process).

The sink listens on the egress network's gateway address and is every shell's
``http_proxy``/``https_proxy``: busybox ``wget`` (and the image's ``curl``, a
script over it) send every request there, whatever the host name, and the sink
hands it to the :data:`~mosaic_gym.sandbox.base.HttpHandler` of the sandbox whose
container sent it (the world's web service, which records it as egress).
``CONNECT`` tunnels are answered with a throw-away certificate (busybox does not
check certificates), so HTTPS bodies are seen too. A request the handler fails
on is answered 502 and the error kept for the sandbox to raise (fail closed).
Containers without a handler are answered 403 and nothing is recorded.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socketserver
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from mosaic_gym.core.egress import wire_text
from mosaic_gym.errors import SandboxError, ToolError
from mosaic_gym.sandbox.base import HttpHandler, HttpRequest, HttpResponse
from mosaic_gym.sandbox.docker.egress import SINK_PORTS
from mosaic_gym.sandbox.docker.limits import MAX_SINK_BODY_BYTES, MAX_SINK_READ_BYTES

_HOP_HEADERS = {
    "host", "connection", "proxy-connection", "content-length", "keep-alive", "te",
    "transfer-encoding", "proxy-authorization",
}  # fmt: skip


@dataclass
class _Route:
    handler: HttpHandler | None
    errors: list[BaseException] = field(default_factory=list)


class EgressSink:
    """The recording proxy of one process, on ``gateway:port`` of the egress network."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._tls = _tls_context()
        self._server = self._bind(gateway)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mosaic-egress-sink", daemon=True
        )
        self._thread.start()

    @property
    def proxy_url(self) -> str:
        return f"http://{self.gateway}:{self.port}"

    def _bind(self, gateway: str) -> http.server.ThreadingHTTPServer:
        handler = type("_BoundHandler", (_SinkHandler,), {"sink": self})
        for port in SINK_PORTS:
            try:
                server = _QuietServer((gateway, port), handler)
            except OSError:
                continue
            server.daemon_threads = True
            return server
        raise SandboxError(f"no free egress sink port on {gateway} in {SINK_PORTS}")

    def register(self, address: str, handler: HttpHandler | None) -> None:
        """Send requests from container ``address`` to ``handler`` (``None``: refuse them)."""
        with self._lock:
            self._routes[address] = _Route(handler)

    def unregister(self, address: str) -> None:
        with self._lock:
            self._routes.pop(address, None)

    def take_errors(self, address: str) -> list[BaseException]:
        """Errors the handler of ``address`` raised since the last call."""
        with self._lock:
            route = self._routes.get(address)
            if route is None:
                return []
            errors, route.errors = route.errors, []
            return errors

    def route(self, address: str) -> _Route | None:
        with self._lock:
            return self._routes.get(address)

    def tls_context(self) -> ssl.SSLContext | None:
        return self._tls

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the address's name (socket.getfqdn):
        # nothing of ours may query a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    sink: EgressSink
    #: Set on the handler of a decrypted CONNECT tunnel: the tunnel's "host:port".
    tunnel: str | None = None
    protocol_version = "HTTP/1.0"
    server_version = "mosaic-egress-sink"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib naming
        context = self.sink.tls_context()
        route = self.sink.route(self.client_address[0])
        if context is None or route is None or route.handler is None:
            self._answer(502 if route and route.handler else 403, "tunnels are not available")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tunnel = context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        inner = type("_TunnelHandler", (type(self),), {"tunnel": self.path})
        with contextlib.suppress(OSError, ssl.SSLError):
            inner(tunnel, self.client_address, self.server)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._forward()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def _url(self, scheme_hint: str | None) -> str:
        if "://" in self.path:
            url = self.path
        else:
            host = str(self.tunnel or self.headers.get("Host") or self.client_address[0])
            if self.tunnel and host.endswith(":443"):
                host = host[: -len(":443")]
            url = f"{'https' if self.tunnel else 'http'}://{host}{self.path}"
        if scheme_hint and "://" in url:
            url = f"{scheme_hint}://{url.split('://', 1)[1]}"
        return url

    def _forward(self) -> None:
        route = self.sink.route(self.client_address[0])
        hints = {name.lower()[len("x-mosaic-"):]: value for name, value in self.headers.items()
                 if name.lower().startswith("x-mosaic-")}  # fmt: skip
        length = _content_length(self.headers.get("Content-Length"))
        body, total = _read_bounded(self.rfile, length)
        if route is None or route.handler is None:
            self._answer(403, "egress is blocked in this sandbox\n")
            return
        if total > MAX_SINK_BODY_BYTES:
            # Refused whole, like the fake shell's egress bound: nothing bigger than
            # what the leak detector scans is delivered, so nothing escapes unscanned.
            self.close_connection = True
            self._reply(HttpResponse(413, f"[resource limit: request body of {total} bytes "
                                          f"exceeds {MAX_SINK_BODY_BYTES}; nothing was sent]\n"),
                        hints)
            return
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in _HOP_HEADERS
            and not name.lower().startswith("x-mosaic-")
            and not (name.lower() == "user-agent" and value == "Wget")
        }
        method = self.command
        if method == "GET" and body and self.headers.get("User-Agent") == "Wget":
            # busybox 1.35 writes "GET" on every proxied request, even with
            # --post-data/--post-file; a body only comes with those: it is a POST.
            method = "POST"
        request = HttpRequest(
            method=(hints.get("method") or method).upper(),
            url=self._url(hints.get("scheme")),
            body=wire_text(body),  # binary stays decodable (base64), not mangled
            headers=headers,
        )
        try:
            response = route.handler(request)
        except ToolError as refused:  # the world refused it (an egress bound): not a bug
            self._reply(HttpResponse(413, f"{refused}\n"), hints)
            return
        except Exception as error:  # the world's bug: answer, and let the sandbox raise
            route.errors.append(error)
            self._answer(502, "the web service failed\n")
            return
        if "client" in hints:
            self._answer_curl(response, hints)
        else:
            self._answer(response.status, response.body)

    def _reply(self, response: HttpResponse, hints: dict[str, str]) -> None:
        """Answer as the client expects (the image's curl wants the status in a header)."""
        if "client" in hints:
            self._answer_curl(response, hints)
        else:
            self._answer(response.status, response.body)

    def _answer_curl(self, response: HttpResponse, hints: dict[str, str]) -> None:
        """The image's ``curl`` wants curl's semantics: the real status in a header."""
        body = response.body
        head = f"HTTP/1.1 {response.status}\r\n\r\n"
        if hints.get("head"):
            body = head
        elif hints.get("include"):
            body = head + body
        failing = hints.get("fail") and response.status >= 400
        self._answer(response.status if failing else 200, "" if failing else body,
                     {"X-Mosaic-Status": str(response.status)})  # fmt: skip

    def _answer(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            pass
        self.close_connection = True


def _tls_context() -> ssl.SSLContext | None:
    """A server context with a fresh self-signed certificate, or ``None`` if none can be made."""
    directory = tempfile.mkdtemp(prefix="mosaic-egress-")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    try:
        if not _make_certificate(cert, key):
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context
    except (OSError, ssl.SSLError):
        return None
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _make_certificate(cert: str, key: str) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None:
        return False
    command = [
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", "/CN=mosaic-egress-sink", "-keyout", key, "-out", cert,
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _content_length(value: str | None) -> int:
    """A request's declared body length (0 when absent or malformed)."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _read_bounded(stream: Any, length: int) -> tuple[bytes, int]:
    """Read a body of ``length`` bytes in chunks, keeping at most MAX_SINK_BODY_BYTES + 1.

    Returns (kept bytes, bytes read). Reading stops at MAX_SINK_READ_BYTES: a client
    that declares more is cut off (the connection closes) instead of being buffered.
    """
    kept = bytearray()
    total = 0
    while total < min(length, MAX_SINK_READ_BYTES):
        chunk = stream.read(min(1 << 16, length - total))
        if not chunk:
            break
        total += len(chunk)
        if len(kept) <= MAX_SINK_BODY_BYTES:
            kept += chunk[: MAX_SINK_BODY_BYTES + 1 - len(kept)]
    return bytes(kept), max(total, length)
