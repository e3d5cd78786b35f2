"""Who may drive the sandbox: the guard in front of the control API and the console.

The control API (``/_control/``) and the console (``/`` and its buttons under
``/_console/``) move simulated money and forge notifications. A web page open
in the developer's browser must not be able to drive them, so every request
to them is checked here, before any view runs:

1. **Host** (DNS rebinding: a hostile name that resolves to 127.0.0.1) must be
   a loopback name or address, the bound address, the host of the sandbox's
   ``base_url``, a name given with ``--allow-host``, or a name under a suffix
   that never resolves in public DNS (RFC 6761: ``.localhost``, ``.test``,
   ``.invalid``; in-process test clients use these). Anything else: 403.
2. **Origin** on a POST (or any method but GET/HEAD/OPTIONS) must be the
   sandbox's own origin, and ``Sec-Fetch-Site`` (when sent) ``same-origin`` or
   ``none``; a cross-site or same-site page (another port on localhost) gets 403.
3. **Token**, when one is set (``payhub-sandbox run`` sets one whenever it is
   bound to a non-loopback address): ``X-Sandbox-Token: T`` or
   ``Authorization: Bearer T``. A browser opens the console once at ``/?token=T``,
   which stores it in a ``SameSite=Strict`` cookie for the console's own forms.

The channel-facing endpoints (gateways, cashiers, WeChat's API) are not
guarded: shops and browsers reach them cross-origin by design.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from payhub_sandbox._context import current_sandbox

__all__ = [
    "TOKEN_COOKIE",
    "TOKEN_HEADER",
    "ControlGuard",
    "install_guard",
    "is_loopback_host",
]

TOKEN_HEADER: Final = "X-Sandbox-Token"  # noqa: S105 - a header name
TOKEN_COOKIE: Final = "payhub_sandbox_token"  # noqa: S105 - a cookie name
GUARD_KEY: Final = "payhub_sandbox_guard"

#: Path prefixes the guard protects; "/" (the console page) exactly.
_GUARDED_PREFIXES: Final = ("/_control/", "/_console/")
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: RFC 6761 special-use names: never delegated in public DNS, so no attacker can
#: point one at the developer's machine.
_RESERVED_SUFFIXES: Final = (".localhost", ".test", ".invalid")
_SAME_ORIGIN: Final = frozenset({"same-origin", "none"})


def _host_name(host: str) -> str:
    """``Host`` without its port, lowercase, without a trailing dot; IPv6 unbracketed."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or address, no port) names this machine's loopback."""
    name = _host_name(host)
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ControlGuard:
    """The rules above; ``hosts`` are the extra names allowed, ``token`` the secret or None."""

    hosts: frozenset[str] = field(default_factory=frozenset)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def build(cls, hosts: Iterable[str] = (), token: str | None = None) -> ControlGuard:
        names = frozenset(_host_name(h) for h in hosts if h.strip())
        # A wildcard bind address names no host anyone sends.
        names -= {"0.0.0.0", "::", ""}  # noqa: S104 - compared, never bound
        return cls(hosts=names, token=token or None)

    def host_allowed(self, host: str, base_url: str | None) -> bool:
        name = _host_name(host)
        if not name:
            return False
        if is_loopback_host(name) or name in self.hosts or name.endswith(_RESERVED_SUFFIXES):
            return True
        return base_url is not None and name == _host_name(urlsplit(base_url).netloc)

    def cross_site_problem(
        self, method: str, origin: str | None, fetch_site: str | None, host: str
    ) -> str | None:
        if method in _SAFE_METHODS:
            return None
        if fetch_site is not None and fetch_site.strip().lower() not in _SAME_ORIGIN:
            return f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:20]})"
        if origin is None:
            return None  # not a browser (curl, httpx, the pytest plugin)
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.strip().lower():
            return f"cross-origin request refused (Origin: {origin[:80]})"
        return None

    def token_given(self) -> bool:
        if self.token is None:
            return True
        offered = request.headers.get(TOKEN_HEADER)
        if offered is None:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                offered = value.strip()
        if offered is None:
            offered = request.cookies.get(TOKEN_COOKIE)
        return offered is not None and hmac.compare_digest(
            offered.encode("utf-8", "surrogateescape"), self.token.encode("utf-8")
        )


def _guarded(path: str) -> bool:
    return path == "/" or path.startswith(_GUARDED_PREFIXES)


def _refuse(code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), 403


def _check() -> BaseResponse | tuple[Response, int] | None:
    if not _guarded(request.path):
        return None
    guard: ControlGuard = current_sandbox_guard()
    if not guard.host_allowed(request.host, current_sandbox().base_url):
        return _refuse(
            "FORBIDDEN_HOST",
            f"Host {request.host[:80]!r} is not this sandbox's: use 127.0.0.1 or localhost, "
            "or start it with --allow-host NAME",
        )
    problem = guard.cross_site_problem(
        request.method,
        request.headers.get("Origin"),
        request.headers.get("Sec-Fetch-Site"),
        request.host,
    )
    if problem is not None:
        return _refuse("CROSS_ORIGIN", problem)
    if guard.token is not None and request.path == "/" and "token" in request.args:
        # The console's entry: keep the token in a cookie only this origin sends.
        given = request.args["token"]
        if not hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), guard.token.encode("utf-8")
        ):
            return _refuse("BAD_TOKEN", "wrong sandbox token")
        response = redirect("/", code=303)
        response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="Strict", path="/")
        return response
    if not guard.token_given():
        return _refuse(
            "TOKEN_REQUIRED",
            f"this sandbox needs its token: send {TOKEN_HEADER} or Authorization: Bearer "
            "(the console: open /?token=...)",
        )
    return None


def current_sandbox_guard() -> ControlGuard:
    guard: ControlGuard = current_app.extensions[GUARD_KEY]
    return guard


def install_guard(app: Flask, guard: ControlGuard) -> None:
    """Put ``guard`` in front of the control API and the console of ``app``."""
    app.extensions[GUARD_KEY] = guard
    app.before_request(_check)
