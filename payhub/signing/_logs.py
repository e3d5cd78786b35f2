"""Keep signatures and secrets that travel in URLs out of log lines.

Alipay's OpenAPI takes ``sign`` in the query string of ``gateway.do`` (every API
call and every cashier-page URL), and httpx logs each request's full URL at INFO
("HTTP Request: POST https://…/gateway.do?…&sign=…"): an application that turns
on INFO logging would write every request's full signature to its logs. The
filter below is attached to httpx's and httpcore's loggers (never a handler, a
level or a format: payhub still configures no logging) and rewrites the value of
every signature-, key-, token- or secret-like query parameter of a record before
any handler sees it. The sandbox's request log (werkzeug's) uses the same rule,
and the Flask and Django adapters guard their development servers' request logs.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = ["REDACTED", "guard_http_logs", "redact_url_secrets"]

#: What a redacted value reads as.
REDACTED = "[redacted]"

#: A query parameter whose NAME ends in one of these words (any case): ``sign``
#: (Alipay, EPay), ``signature`` (UnionPay), ``paySign`` (WeChat JSAPI), ``key``
#: (EPay's merchant key), ``access_token``/``token`` (robots, the sandbox's
#: console), ``app_secret``, ``password``. ``sign_type`` and ``cert_sn`` stay:
#: they are not secret and help debugging.
_PARAM = re.compile(
    r"(?P<name>(?:^|(?<=[?&;\s\"']))[A-Za-z0-9_.\-]*?"
    r"(?:sign|signature|key|token|secret|password|passwd))="
    r"(?P<value>[^&;\s\"'#]+)",
    re.IGNORECASE,
)

#: Loggers that may print a request URL: httpx's own, and httpcore's (which log
#: on child loggers; a logger's filters do not see its children's records).
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def redact_url_secrets(text: str) -> str:
    """``text`` with the value of every signature-, key-, token- or secret-like
    query parameter (``sign=…``, ``signature=…``, ``access_token=…``) replaced by
    ``[redacted]``; the rest, ``sign_type`` included, unchanged."""
    return _PARAM.sub(lambda m: f"{m.group('name')}={REDACTED}", text)


class _UrlSecretFilter(logging.Filter):
    """Rewrites a record whose formatted message holds a secret-like parameter."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        redacted = redact_url_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = _UrlSecretFilter()
_guarded: set[str] = set()
_install_lock = threading.Lock()


def guard_http_logs(*loggers: str) -> None:
    """Attach the redacting filter to httpx's and httpcore's loggers, and to
    ``loggers`` too (a web server's request log: ``"werkzeug"``,
    ``"django.server"``), once per logger and process. Every hub calls it when it
    is built; the Flask and Django adapters name their dev servers' loggers, which
    log Alipay's return URL (``…&sign=…``) whole."""
    with _install_lock:
        for name in (*_HTTP_LOGGERS, *loggers):
            if name not in _guarded:
                logging.getLogger(name).addFilter(_FILTER)
                _guarded.add(name)
