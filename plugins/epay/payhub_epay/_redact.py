"""Keep EPay merchant keys out of httpx's and httpcore's log records.

EPay's order query (``api.php?act=order``) takes ``pid`` and ``key`` from the
query string only (彩虹易支付 reads ``$_GET``), so the key is part of the URL,
and httpx logs every request's URL at INFO ("HTTP Request: GET …"). The
filter below is attached to those libraries' loggers (never a handler, a
level or a format: the library still configures no logging) and rewrites any
record whose message contains a registered key, in raw or URL-encoded form,
before any handler sees it.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "register_secret"]

REDACTED = "[redacted]"

#: Loggers that may print a request URL: httpx's own, and httpcore's (which
#: log on child loggers; a logger's filters do not see its children's records).
_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _SecretFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def add(self, secret: str) -> None:
        forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
        with self._lock:
            self._secrets = self._secrets | {f for f in forms if f}

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        if any(s in message for s in secrets):
            for secret in sorted(secrets, key=len, reverse=True):
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


_FILTER = _SecretFilter()
_installed = False
_install_lock = threading.Lock()


def register_secret(secret: str) -> None:
    """Redact ``secret`` from every httpx/httpcore log record from now on."""
    global _installed  # noqa: PLW0603 - one process-wide filter, installed once
    _FILTER.add(secret)
    with _install_lock:
        if not _installed:
            for name in _LOGGERS:
                logging.getLogger(name).addFilter(_FILTER)
            _installed = True
