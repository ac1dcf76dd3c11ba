"""Downloads in tests without a network: a folder served over HTTP on 127.0.0.1 (the real client path, pooch and
requests), and the URL of a local port that nothing listens on."""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import threading


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the method it replaces
        pass


@contextlib.contextmanager
def serve(directory):
    """``http://127.0.0.1:PORT/`` serving ``directory`` while the block runs."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def unreachable_url() -> str:
    """``http://127.0.0.1:PORT/`` on a port that was free a moment ago and that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
