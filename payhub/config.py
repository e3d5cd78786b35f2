"""Configuration helpers: secret references and a redacting secret holder.

A secret in configuration may be given inline, or as a reference:
``{"$env": "ALIPAY_PRIVATE_KEY"}`` reads an environment variable,
``{"$file": "/etc/shop/alipay.pem"}`` reads a file. Resolved secrets are kept
in :class:`Secret`, whose ``repr`` and ``str`` never show the value.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from pydantic_core import core_schema

from payhub.errors import ConfigurationError, PayhubError

__all__ = [
    "Environment",
    "Secret",
    "describe_validation_error",
    "production_endpoint_problem",
    "resolve_secret",
    "validated",
    "validation_problems",
]

M = TypeVar("M", bound=BaseModel)

#: Where a channel account talks to: the real channel, or a test system (the
#: channel's own sandbox or test environment, or payhub's local sandbox).
Environment: TypeAlias = Literal["production", "sandbox"]


class Secret:
    """A secret value that never shows itself in a log, an error or a ``repr``."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def get(self) -> bytes:
        return self._value

    def get_text(self) -> str:
        try:
            return self._value.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError("secret is not UTF-8 text") from None

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            lambda v: resolve_secret(v, "secret"),
            serialization=core_schema.plain_serializer_function_ser_schema(repr),
        )


def resolve_secret(value: object, name: str = "secret") -> Secret:
    """Resolve an inline secret or a ``$env`` / ``$file`` reference into a :class:`Secret`.

    Errors name the setting and the reference, never the value.
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value.encode("utf-8"))
    if isinstance(value, bytes):
        return Secret(value)
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, ref),) = value.items()
        if kind == "$env" and isinstance(ref, str):
            env = os.environ.get(ref)
            if env is None:
                raise ConfigurationError(f"{name}: environment variable {ref!r} is not set")
            return Secret(env.encode("utf-8"))
        if kind == "$file" and isinstance(ref, str | os.PathLike):
            try:
                return Secret(Path(ref).read_bytes())
            except OSError as exc:
                raise ConfigurationError(
                    f"{name}: cannot read file {str(ref)!r}: {exc.strerror}"
                ) from None
    raise ConfigurationError(
        f"{name}: expected a string, bytes, {{'$env': NAME}} or {{'$file': PATH}}"
    )


def production_endpoint_problem(url: str, *, test_hosts: Collection[str] = ()) -> str | None:
    """Why ``url`` cannot be a production endpoint, or None.

    Refused in production: plain http, a host in ``test_hosts`` (the channel's
    own sandbox or test gateways), ``localhost``, and loopback, private,
    link-local, reserved or unspecified IP addresses (a local sandbox, or a
    cloud metadata address). Names resolve nowhere here: no DNS lookup.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return "is not a valid URL"
    if parts.scheme != "https":
        return "must be https in production"
    if not host:
        return "has no host"
    if host in {h.lower() for h in test_hosts}:
        return f"points at the test host {host!r}"
    if host == "localhost" or host.endswith(".localhost"):
        return "points at localhost"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_multicast
    ):
        return f"points at the non-public address {host}"
    return None


def describe_validation_error(exc: ValidationError) -> str:
    """Each failing setting and why, ``a.b: reason; c: reason``: never the input
    (a value may be a secret), never pydantic's documentation URL."""
    return "; ".join(f"{setting}: {reason}" for setting, reason in validation_problems(exc))


def validation_problems(exc: ValidationError) -> tuple[tuple[str, str], ...]:
    """Each failing setting and why, as ``(setting, reason)`` pairs (``"a.b"``,
    ``"Field required"``): never the input, never pydantic's documentation URL."""
    return tuple(
        (".".join(str(part) for part in error["loc"]) or "config", error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    )


def validated(model: type[M], value: object, what: str) -> M:
    """``model.model_validate(value)``, or one :class:`ConfigurationError` saying
    ``"<what>: <setting>: <reason>; ..."``; the one way configuration models are
    checked. A mapping is copied first (the caller's stays as it was); a payhub
    error raised by a validator becomes a ConfigurationError, ``"<what>: <message>"``.
    """
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(dict(value) if isinstance(value, Mapping) else value)
    except ValidationError as exc:
        raise ConfigurationError(
            f"{what}: {describe_validation_error(exc)}", problems=validation_problems(exc)
        ) from None
    except PayhubError as exc:
        raise ConfigurationError(f"{what}: {exc.message}") from None
