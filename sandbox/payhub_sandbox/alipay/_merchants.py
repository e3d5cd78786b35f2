"""Alipay merchant apps as the sandbox registers them, and the trade statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import ConfigurationError
from payhub.signing import load_public_key
from payhub_sandbox._errors import (
    InvalidInputError,
    parse_fee_rate,
)
from payhub_sandbox._state import Trade, TradeState
from payhub_sandbox.alipay._certs import cert_sn
from payhub_sandbox.alipay._wire import (
    normalize_charset,
)

__all__ = [
    "CHANNEL",
    "DEFAULT_BUYER_ID",
    "DEFAULT_FEE_RATE",
    "AlipayMerchant",
    "alipay_trade_status",
    "make_merchant",
]

CHANNEL: Final = "alipay"
DEFAULT_BUYER_ID: Final = "2088102000000001"
DEFAULT_FEE_RATE: Final = Decimal("0.006")
_ALIPAY_STATUS: Final = {
    TradeState.PENDING: "WAIT_BUYER_PAY",
    TradeState.PAID: "TRADE_SUCCESS",
    TradeState.CLOSED: "TRADE_CLOSED",
    TradeState.FINISHED: "TRADE_FINISHED",
}


def alipay_trade_status(trade: Trade) -> str:
    """The Alipay ``trade_status`` of a trade."""
    return _ALIPAY_STATUS[trade.state]


@dataclass(frozen=True)
class AlipayMerchant:
    """A registered Alipay app: its public key, seller and notification habits."""

    app_id: str
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    seller_id: str
    sign_type: Literal["RSA2", "RSA"] = "RSA2"
    charset: str = "utf-8"
    """The charset of its notifications (``utf-8`` or ``gbk``)."""
    lie_content_type: bool = False
    """Send GBK notifications with a Content-Type that says ``charset=utf-8``."""
    notify_on_close: bool = False
    """Notify ``TRADE_CLOSED`` when the merchant closes a trade (timeouts always notify)."""
    fee_rate: Decimal = DEFAULT_FEE_RATE
    """The service fee rate shown in bills (0.6 % by default)."""
    app_cert_sn: str | None = None
    """Certificate mode: the serial of the app's public-key certificate (registered
    with a certificate instead of a bare key); requests must then carry it."""

    @property
    def public_key_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "sign_type": self.sign_type,
            "charset": self.charset,
            "lie_content_type": self.lie_content_type,
            "notify_on_close": self.notify_on_close,
            "fee_rate": str(self.fee_rate),
            "app_cert_sn": self.app_cert_sn,
            "public_key": self.public_key_pem,
        }


def make_merchant(
    app_id: str,
    public_key: str | bytes | rsa.RSAPublicKey,
    seller_id: str,
    *,
    sign_type: str = "RSA2",
    charset: str = "utf-8",
    lie_content_type: bool = False,
    notify_on_close: bool = False,
    fee_rate: Decimal | str | int = DEFAULT_FEE_RATE,
) -> AlipayMerchant:
    """Validate registration input into an :class:`AlipayMerchant`."""
    if not app_id or not seller_id:
        raise InvalidInputError("app_id and seller_id are required")
    if sign_type == "RSA2":
        kind: Literal["RSA2", "RSA"] = "RSA2"
    elif sign_type == "RSA":
        kind = "RSA"
    else:
        raise InvalidInputError(f"sign_type must be RSA2 or RSA, not {sign_type!r}")
    codec = normalize_charset(charset)
    if codec is None:
        raise InvalidInputError(f"charset must be utf-8 or gbk, not {charset!r}")
    if isinstance(public_key, rsa.RSAPublicKey):
        key = public_key
    else:
        try:
            key = load_public_key(public_key)
        except (ConfigurationError, UnicodeEncodeError) as exc:
            raise InvalidInputError(f"public_key: {exc}") from None
    rate = parse_fee_rate(fee_rate)
    app_cert_sn = _app_cert_sn(public_key)
    return AlipayMerchant(
        app_id=app_id,
        public_key=key,
        seller_id=seller_id,
        sign_type=kind,
        charset=codec,
        lie_content_type=lie_content_type,
        notify_on_close=notify_on_close,
        fee_rate=rate,
        app_cert_sn=app_cert_sn,
    )


def _app_cert_sn(public_key: str | bytes | rsa.RSAPublicKey) -> str | None:
    """The certificate serial when the app registered a certificate (certificate mode)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return None
    raw = public_key.encode("ascii", "replace") if isinstance(public_key, str) else public_key
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        return None
    try:
        return cert_sn(x509.load_pem_x509_certificate(raw.strip()))
    except ValueError:
        raise InvalidInputError("public_key: unreadable certificate") from None
