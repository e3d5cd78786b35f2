"""Registered WeChat Pay merchants (直连商户) and the private keys the sandbox is given."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import ConfigurationError
from payhub.signing import (
    certificate_serial_hex,
    load_certificate,
    load_private_key,
    load_public_key,
)
from payhub_sandbox._errors import InvalidInputError, parse_fee_rate
from payhub_sandbox.wechat._pki import public_key_pem

__all__ = [
    "DEFAULT_FEE_RATE",
    "KeyMode",
    "WechatMerchant",
    "make_wechat_merchant",
    "private_key",
]

DEFAULT_FEE_RATE: Final = Decimal("0.006")
KeyMode = Literal["public_key", "certificate"]


@dataclass(frozen=True)
class WechatMerchant:
    """A registered WeChat Pay merchant (直连商户)."""

    mch_id: str
    app_id: str
    merchant_serial_no: str
    """The serial of the merchant API certificate its requests name (upper hex)."""
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    api_v3_key: bytes = field(repr=False, compare=False)
    key_mode: KeyMode = "public_key"
    """How the sandbox signs to it: the WeChat Pay public key or platform certificates."""
    fee_rate: Decimal = DEFAULT_FEE_RATE
    refund_delay: float = 0.0
    """WeChat seconds a refund stays ``PROCESSING`` (divided by the time factor)."""
    bill_bom: bool = True
    """Whether bill files start with a UTF-8 BOM."""

    @property
    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)

    def to_json(self) -> dict[str, Any]:
        # The API v3 key is a secret: never shown.
        return {
            "mch_id": self.mch_id,
            "app_id": self.app_id,
            "merchant_serial_no": self.merchant_serial_no,
            "key_mode": self.key_mode,
            "fee_rate": str(self.fee_rate),
            "refund_delay": self.refund_delay,
            "bill_bom": self.bill_bom,
            "public_key": self.public_key_pem,
        }


def make_wechat_merchant(  # noqa: PLR0917 - the order WeChat's console lists them in
    mch_id: str,
    app_id: str,
    merchant_serial_no: str,
    merchant_public_key: str | bytes | rsa.RSAPublicKey | x509.Certificate,
    api_v3_key: str | bytes,
    key_mode: str = "public_key",
    *,
    fee_rate: Decimal | str | int = DEFAULT_FEE_RATE,
    refund_delay: float = 0.0,
    bill_bom: bool = True,
) -> WechatMerchant:
    """Validate registration input into a :class:`WechatMerchant`."""
    if not mch_id or not app_id or not merchant_serial_no:
        raise InvalidInputError("mch_id, app_id and merchant_serial_no are required")
    if key_mode == "public_key":
        mode: KeyMode = "public_key"
    elif key_mode == "certificate":
        mode = "certificate"
    else:
        raise InvalidInputError(f"key_mode must be public_key or certificate, not {key_mode!r}")
    serial = merchant_serial_no.upper()
    if not re.fullmatch(r"[0-9A-F]{1,64}", serial, re.ASCII):
        raise InvalidInputError("merchant_serial_no must be a hex certificate serial")
    key = _merchant_key(merchant_public_key, serial)
    raw = api_v3_key.encode("utf-8") if isinstance(api_v3_key, str) else bytes(api_v3_key)
    if len(raw) != 32:
        raise InvalidInputError("api_v3_key must be exactly 32 bytes")
    rate = parse_fee_rate(fee_rate)
    if (
        isinstance(refund_delay, bool)
        or not isinstance(refund_delay, int | float)
        or not 0 <= refund_delay < 10**7
    ):
        raise InvalidInputError("refund_delay must be a non-negative number of seconds")
    return WechatMerchant(
        mch_id=mch_id,
        app_id=app_id,
        merchant_serial_no=serial,
        public_key=key,
        api_v3_key=raw,
        key_mode=mode,
        fee_rate=rate,
        refund_delay=float(refund_delay),
        bill_bom=bool(bill_bom),
    )


def _merchant_key(
    value: str | bytes | rsa.RSAPublicKey | x509.Certificate, serial: str
) -> rsa.RSAPublicKey:
    if isinstance(value, rsa.RSAPublicKey):
        return value
    try:
        if isinstance(value, x509.Certificate):
            cert: x509.Certificate | None = value
        else:
            text = value.encode("utf-8") if isinstance(value, str) else value
            cert = load_certificate(text) if b"-----BEGIN CERTIFICATE-----" in text else None
        key = load_public_key(cert if cert is not None else value)
    except (ConfigurationError, UnicodeEncodeError) as exc:
        raise InvalidInputError(f"merchant_public_key: {exc}") from None
    if cert is not None and certificate_serial_hex(cert) != serial:
        raise InvalidInputError("merchant_serial_no is not the serial of the given certificate")
    return key


def private_key(key: rsa.RSAPrivateKey | str | bytes | None, what: str) -> rsa.RSAPrivateKey | None:
    """A private key given as an object or PEM (None stays None)."""
    if key is None or isinstance(key, rsa.RSAPrivateKey):
        return key
    try:
        return load_private_key(key)
    except ConfigurationError as exc:
        raise InvalidInputError(f"{what}: {exc.message}") from None
