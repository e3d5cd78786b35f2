"""Configuration of one WeChat Pay (APIv3) merchant account."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from payhub.config import Environment, Secret, production_endpoint_problem, validated
from payhub.errors import ConfigurationError

from ._grammar import MERCHANT_ID

__all__ = ["DEFAULT_BASE_URL", "WechatPayConfig"]

DEFAULT_BASE_URL: Final = "https://api.mch.weixin.qq.com"

#: WeChat Pay has no test host for APIv3. Its only test system was APIv2's
#: "仿真测试系统", a path on the production host; a base URL under it is no
#: production endpoint either.
_V2_SANDBOX_PATH: Final = "/sandboxnew"

_SERIAL_RE: Final = re.compile(r"[0-9A-Fa-f]{1,64}", re.ASCII)
_PUB_KEY_ID_RE: Final = re.compile(r"PUB_KEY_ID_[0-9A-Za-z_\-]{1,64}", re.ASCII)
_URL_RE: Final = re.compile(r"https?://[^\s]+", re.ASCII)


class WechatPayConfig(BaseModel):
    """One WeChat Pay merchant (``mchid``) and one app id, with their keys.

    The platform's signatures are checked in one of two modes:

    * **WeChat Pay public key** (new merchants get only this): set
      ``wechatpay_public_key`` and ``wechatpay_public_key_id`` (``PUB_KEY_ID_…``);
    * **platform certificates**: leave both unset; the certificates are
      downloaded from ``/v3/certificates``, decrypted with the API v3 key, and
      refreshed every ``certificate_refresh_interval`` and when a response or a
      notification names an unknown serial (at most once per interval).

    Secrets may be given inline or as ``{"$env": NAME}`` / ``{"$file": PATH}``.

    >>> WechatPayConfig(mch_id="1900000109", app_id="wxd678efh567hg6787",
    ...     merchant_private_key={"$file": "apiclient_key.pem"},
    ...     merchant_serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    ...     api_v3_key={"$env": "WECHAT_API_V3_KEY"},
    ...     wechatpay_public_key={"$file": "pub_key.pem"},
    ...     wechatpay_public_key_id="PUB_KEY_ID_0114232134912410000000000000")  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    mch_id: str
    app_id: str
    #: The merchant API private key (``apiclient_key.pem``) and its certificate's serial.
    merchant_private_key: Secret
    merchant_serial_no: str
    #: The 32-byte APIv3 key: decrypts notifications and platform certificates.
    api_v3_key: Secret
    #: ``"production"`` (the default) or ``"sandbox"``: in production the
    #: ``base_url`` must be a public https endpoint.
    environment: Environment = "production"
    #: Scheme, host and optional path prefix; any URL for a local sandbox
    #: (with ``environment="sandbox"``).
    base_url: str = DEFAULT_BASE_URL
    #: Default ``notify_url`` of payments; a request's own ``notify_url`` wins.
    notify_url: str | None = None
    #: Default ``notify_url`` of refunds (optional at WeChat Pay).
    refund_notify_url: str | None = None
    #: Public-key mode: the WeChat Pay public key (PEM or base64; a reference is fine).
    wechatpay_public_key: Secret | None = None
    wechatpay_public_key_id: str | None = None
    #: Certificate mode: how often the platform certificates are downloaded again.
    certificate_refresh_interval: timedelta = timedelta(hours=12)
    #: ``scene_info.h5_info.type`` of H5 payments.
    h5_type: Literal["Wap", "iOS", "Android"] = "Wap"

    @field_validator("mch_id", "app_id")
    @classmethod
    def _identifier(cls, value: str) -> str:
        # WeChat's grammar: a notification or answer naming any other id is not ours.
        if MERCHANT_ID.fullmatch(value) is None:
            raise ValueError("must be 1-32 ASCII letters, digits, '_' or '-'")
        return value

    @field_validator("merchant_serial_no")
    @classmethod
    def _serial(cls, value: str) -> str:
        if _SERIAL_RE.fullmatch(value) is None:
            raise ValueError("must be the hexadecimal serial of the merchant API certificate")
        return value.upper()

    @field_validator("api_v3_key")
    @classmethod
    def _api_v3_key(cls, value: Secret) -> Secret:
        if len(value.get()) != 32:
            # Raised as is (not a ValueError): the length check is the whole message.
            raise ConfigurationError("wechat: api_v3_key must be exactly 32 bytes")
        return value

    @field_validator("wechatpay_public_key_id")
    @classmethod
    def _public_key_id(cls, value: str | None) -> str | None:
        if value is not None and _PUB_KEY_ID_RE.fullmatch(value) is None:
            raise ValueError("must look like 'PUB_KEY_ID_…'")
        return value

    @field_validator("base_url", "notify_url", "refund_notify_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _URL_RE.fullmatch(value) is None:
            raise ValueError("must be an http(s) URL without spaces")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.query or url.fragment:
            raise ValueError("must have no query and no fragment")
        return value.rstrip("/")

    @field_validator("certificate_refresh_interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least one minute")
        return value

    @model_validator(mode="after")
    def _production_endpoint(self) -> WechatPayConfig:
        if self.environment != "production":
            return self
        problem = production_endpoint_problem(self.base_url)
        if problem is None and httpx.URL(self.base_url).path.startswith(_V2_SANDBOX_PATH):
            problem = "points at WeChat Pay's APIv2 sandbox"
        if problem is not None:
            # Raised as is: one clear sentence (the URL itself is not repeated).
            raise ConfigurationError(
                f'wechat configuration: environment "production" refuses this base_url: '
                f'it {problem}; a local sandbox needs "environment": "sandbox"'
            )
        return self

    @model_validator(mode="after")
    def _one_mode(self) -> WechatPayConfig:
        if (self.wechatpay_public_key is None) != (self.wechatpay_public_key_id is None):
            raise ValueError(
                "give both wechatpay_public_key and wechatpay_public_key_id "
                "(public-key mode) or neither (platform-certificate mode)"
            )
        return self

    @property
    def uses_public_key(self) -> bool:
        """True in WeChat Pay public-key mode, False in platform-certificate mode."""
        return self.wechatpay_public_key_id is not None

    @classmethod
    def from_mapping(cls, config: WechatPayConfig | Mapping[str, Any]) -> WechatPayConfig:
        """Validate a plain mapping; errors name the settings, never their values."""
        return validated(cls, config, "wechat configuration")
