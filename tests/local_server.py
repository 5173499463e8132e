"""A local HTTP server on 127.0.0.1 for download tests: the tests never use the internet.

``server.routes[path] = behaviour`` where a behaviour is called with the request handler; the
helpers below serve good bytes, drop the connection halfway, stall, redirect or fail. Every
request path is recorded in ``server.requests``.
"""

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Behaviour = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    """``with LocalServer() as server:`` serves ``server.routes`` at ``server.url``."""

    def __init__(self):
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[str] = []
        self.release = threading.Event()  # ends every stall when the server closes
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                server.routes.get(self.path, status(404))(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def count(self, path: str) -> int:
        return self.requests.count(path)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def good(body: bytes, content_length: bool = True) -> Behaviour:
    """200 with ``body`` (with or without Content-Length: then the closed connection ends it)."""
    def behaviour(handler):
        handler.send_response(200)
        if content_length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return behaviour


def dropped(body: bytes, content_length: bool = True) -> Behaviour:
    """Announce ``body`` but close the connection after half of it."""
    def behaviour(handler):
        handler.send_response(200)
        if content_length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
    return behaviour


def stalled(body: bytes, server: LocalServer) -> Behaviour:
    """Send the headers and half of ``body``, then nothing until the server closes."""
    def behaviour(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        server.release.wait(30)
    return behaviour


def status(code: int) -> Behaviour:
    def behaviour(handler):
        handler.send_error(code)
    return behaviour


def redirect(location: str, code: int = 302) -> Behaviour:
    def behaviour(handler):
        handler.send_response(code)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return behaviour


class SilentServer:
    """A socket on 127.0.0.1 that accepts connections (kernel backlog) but never answers."""

    def __enter__(self) -> "SilentServer":
        self.socket = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self.socket.close()
