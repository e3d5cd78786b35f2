"""The configuration of one EPay merchant account, validated once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from payhub.config import Environment, Secret, production_endpoint_problem, resolve_secret
from payhub.errors import AmountError, ConfigurationError
from payhub.money import Money

__all__ = ["DEFAULT_LATE_WINDOW", "DEFAULT_MAX_AMOUNT", "EpayConfig"]

#: How long after an order expired (or, without an expiry, was created) a
#: payment notification is still credited. Covers 彩虹易支付's own resend
#: schedule (1, 3, 20, 60, 120 minutes) several times over.
DEFAULT_LATE_WINDOW = timedelta(hours=12)
#: The default per-payment limit (yuan); providers set their own, lower ones.
DEFAULT_MAX_AMOUNT = "50000.00"

_PID = re.compile(r"[0-9]{1,20}", re.ASCII)
_PAY_TYPE = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)


class EpayConfig(BaseModel):
    """``pid``, ``key`` (inline, ``{"$env": …}`` or ``{"$file": …}``), ``gateway``
    (the provider's base URL, ending in ``/``), ``pay_type`` (``alipay``,
    ``wxpay``, ``qqpay``, …: one account per type), ``notify_url``,
    ``return_url``, ``environment``, ``late_window_hours``, ``max_amount``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    pid: str
    key: Secret
    gateway: str
    pay_type: str = "alipay"
    notify_url: str | None = None
    return_url: str | None = None
    environment: Environment = "production"
    late_window_hours: Decimal = Field(
        default=Decimal(int(DEFAULT_LATE_WINDOW.total_seconds()) // 3600), gt=0, le=24 * 30
    )
    max_amount: str = DEFAULT_MAX_AMOUNT

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, value: object) -> Secret:
        # A key read from a file usually ends in a newline; it is never part of the key.
        secret = Secret(resolve_secret(value, "key").get().strip())
        if not secret.get():
            raise ConfigurationError("key: must not be empty")
        secret.get_text()  # the key is text: it is appended to the string to sign
        return secret

    @field_validator("pid", mode="before")
    @classmethod
    def _pid(cls, value: object) -> str:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not _PID.fullmatch(text):
            raise ValueError("must be the merchant's numeric id")
        return text

    @field_validator("pay_type")
    @classmethod
    def _pay_type(cls, value: str) -> str:
        if not _PAY_TYPE.fullmatch(value):
            raise ValueError("must be a payment type name such as 'alipay' or 'wxpay'")
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("max_amount")
    @classmethod
    def _max_amount(cls, value: str) -> str:
        Money.parse(value, "CNY")
        return value

    @model_validator(mode="after")
    def _production(self) -> EpayConfig:
        if self.environment == "production":
            problem = production_endpoint_problem(self.gateway)
            if problem is not None:
                raise ValueError(f"gateway {problem}")
        return self

    @property
    def late_window(self) -> timedelta:
        return timedelta(seconds=float(self.late_window_hours * 3600))

    @property
    def max_amount_minor(self) -> int:
        return Money.parse(self.max_amount, "CNY").minor

    @classmethod
    def validated(cls, name: str, config: Mapping[str, Any]) -> EpayConfig:
        """Validate ``config``; errors name the setting, never a secret's value."""
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"epay channel {name!r}: configuration must be a mapping")
        try:
            return cls.model_validate(dict(config))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {_reason(e)}"
                for e in exc.errors(include_input=False)
            )
            raise ConfigurationError(f"epay channel {name!r}: {problems}") from None
        except (ConfigurationError, AmountError) as exc:
            raise ConfigurationError(f"epay channel {name!r}: {exc.message}") from None


def _reason(error: Any) -> str:
    ctx = error.get("ctx") or {}
    inner = ctx.get("error")
    return str(inner) if inner is not None else str(error.get("msg", "invalid"))
