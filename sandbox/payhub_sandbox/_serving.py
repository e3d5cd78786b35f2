"""The sandbox's HTTP server: werkzeug's, with signatures kept out of its request log.

werkzeug logs every request line at INFO (``"GET /gateway.do?…&sign=… HTTP/1.1"
200 -``), and Alipay's cashier pages and API calls carry the full ``sign`` in the
query string, the console link the control ``token``. The handler below passes
each log line through :func:`payhub.signing.redact_url_secrets` first: the value
of every signature-, key-, token- or secret-like parameter reads ``[redacted]``.
"""

from __future__ import annotations

from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from payhub.signing import redact_url_secrets

__all__ = ["RedactingRequestHandler", "make_sandbox_server"]


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging request lines without secrets."""

    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(
            type,
            redact_url_secrets(message),
            *(redact_url_secrets(a) if isinstance(a, str) else a for a in args),
        )


def make_sandbox_server(host: str, port: int, app: Any) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` whose request log redacts secrets."""
    return make_server(host, port, app, threaded=True, request_handler=RedactingRequestHandler)
