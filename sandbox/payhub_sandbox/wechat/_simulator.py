"""WeChat Pay APIv3's side of the sandbox: merchants, keys, the ``/v3/...``
endpoints, notifications and bills.

:class:`WechatSimulator` holds no Flask: the view hands it the method, the
path, the request target as sent, the ``Authorization`` headers and the exact
body bytes, and sends back the :class:`WechatReply` it returns. The wire format
is built here and in :mod:`payhub_sandbox.wechat._wire` from PROTOCOLS.md,
never through ``payhub.channels``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import ConfigurationError, SignatureError
from payhub.money import Money
from payhub.signing import (
    aes_gcm_encrypt,
    certificate_serial_hex,
    load_certificate,
    load_private_key,
    load_public_key,
    rsa_verify,
)
from payhub_sandbox._clock import CHINA_TZ, Clock
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeNotFoundError,
    TradeStateError,
    UnknownMerchantError,
    parse_fee_rate,
)
from payhub_sandbox._state import Refund, Trade, TradeState, TradeStore
from payhub_sandbox.delivery._scheduler import DeliveryScheduler, OutboundNotification, scaled
from payhub_sandbox.wechat._bills import WECHAT_BILL_TYPES, wechat_bill_csv
from payhub_sandbox.wechat._notify import RESIGN_HEADER, ResigningTransport
from payhub_sandbox.wechat._pki import (
    PlatformCertificate,
    issue_platform_certificate,
    public_key_id,
    public_key_pem,
    sandbox_ca,
)
from payhub_sandbox.wechat._wire import (
    DEFAULT_MESSAGES,
    ERROR_STATUS,
    TIMESTAMP_TOLERANCE,
    JsonFloat,
    WechatFailure,
    format_time,
    new_nonce,
    parse_authorization,
    parse_json_object,
    parse_time,
    render_json,
    request_message,
    response_message,
    signed_headers,
)

__all__ = [
    "DEFAULT_OPENID",
    "WECHAT_RETRY_DELAYS",
    "WechatMerchant",
    "WechatReply",
    "WechatSimulator",
    "make_wechat_merchant",
    "wechat_trade_state",
]

CHANNEL: Final = "wechat"

#: Seconds between notification attempts: 15s, 15s, 30s, 3m, 10m, 20m, 30m,
#: 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h (16 attempts, 24 h 4 m in all).
WECHAT_RETRY_DELAYS: Final = (
    15.0,
    15.0,
    30.0,
    180.0,
    600.0,
    1200.0,
    1800.0,
    1800.0,
    1800.0,
    3600.0,
    10800.0,
    10800.0,
    10800.0,
    21600.0,
    21600.0,
)

DEFAULT_OPENID: Final = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
DEFAULT_FEE_RATE: Final = Decimal("0.006")
KeyMode = Literal["public_key", "certificate"]
RefundOutcome = Literal["SUCCESS", "ABNORMAL", "CLOSED"]

_PRODUCTS: Final = ("native", "jsapi", "app", "h5")
_TRADE_TYPES: Final = {"native": "NATIVE", "jsapi": "JSAPI", "app": "APP", "h5": "MWEB"}
_OUT_TRADE_NO_RE: Final = re.compile(r"[0-9A-Za-z_\-*|]{6,32}", re.ASCII)
_OUT_REFUND_NO_RE: Final = re.compile(r"[0-9A-Za-z_\-*|@]{1,64}", re.ASCII)
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}", re.ASCII)
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_MAX_TOTAL: Final = 2**31 - 1
_BILL_LINK_TTL: Final = timedelta(seconds=30)
_BILL_READY_AT: Final = time(10)
_REFUND_EVENTS: Final = {
    "SUCCESS": ("REFUND.SUCCESS", "退款成功"),
    "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
    "CLOSED": ("REFUND.CLOSED", "退款关闭"),
}
_STATE_DESC: Final = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "订单未支付",
    "CLOSED": "订单已关闭",
}


def wechat_trade_state(trade: Trade) -> str:
    """The WeChat ``trade_state`` of a trade: ``NOTPAY``, ``SUCCESS``, ``REFUND``, ``CLOSED``."""
    if trade.state is TradeState.PENDING:
        return "NOTPAY"
    if trade.state is TradeState.CLOSED:
        return "CLOSED"
    return "REFUND" if trade.extra.get("refund_requested") else "SUCCESS"


# -- merchants ----------------------------------------------------------------------


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


# -- answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class WechatReply:
    """What a ``/v3/...`` request is answered with."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    content_type: str = "application/json; charset=utf-8"


@dataclass(frozen=True)
class _Call:
    merchant: WechatMerchant
    query: Mapping[str, str]
    body: bytes
    base_url: str
    groups: tuple[str, ...]

    def json(self) -> dict[str, Any]:
        data = parse_json_object(self.body)
        if data is None:
            raise WechatFailure("PARAM_ERROR", "请求体格式错误：不是合法的JSON对象")
        return data


@dataclass(frozen=True)
class _Answer:
    status: int = 200
    data: Mapping[str, Any] | None = None
    raw: bytes | None = None
    """An unsigned file (the bill download)."""
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class _BillLink:
    mch_id: str
    data: bytes
    expires_at: datetime


@dataclass
class _Fault:
    code: str
    message: str | None
    remaining: int
    path: str | None
    mch_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "remaining": self.remaining,
            "path": self.path,
            "mch_id": self.mch_id,
        }


_Handler = Callable[["WechatSimulator", _Call], _Answer]


def _param(path: str, value: object, issue: str) -> WechatFailure:
    shown = value if isinstance(value, str | int) and not isinstance(value, bool) else None
    detail: dict[str, Any] = {"location": "body", "field": path, "issue": issue}
    if shown is not None:
        detail["value"] = shown
    return WechatFailure("PARAM_ERROR", f"输入源“{path}”映射到字段校验失败：{issue}", detail)


def _string(
    data: Mapping[str, Any],
    name: str,
    where: str,
    *,
    required: bool = True,
    max_len: int = 256,
    min_len: int = 1,
) -> str:
    path = f"{where}/{name}"
    value = data.get(name)
    if value is None:
        if required:
            raise _param(path, value, "字段缺失")
        return ""
    if not isinstance(value, str) or isinstance(value, JsonFloat):
        raise _param(path, value, "必须是字符串")
    if not min_len <= len(value) <= max_len:
        raise _param(path, value, f"长度必须在{min_len}到{max_len}之间")
    return value


def _object(data: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> Any:
    path = f"{where}/{name}"
    value = data.get(name)
    if value is None:
        if required:
            raise _param(path, value, "字段缺失")
        return {}
    if not isinstance(value, dict):
        raise _param(path, None, "必须是JSON对象")
    return value


def _fen(data: Mapping[str, Any], name: str, where: str) -> int:
    """A JSON integer > 0 (never ``100.0``, ``"100"``, ``true`` or a negative)."""
    path = f"{where}/{name}"
    value = data.get(name)
    if value is None:
        raise _param(path, value, "字段缺失")
    if isinstance(value, JsonFloat):
        raise _param(path, str(value), "必须是整数（单位：分）")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _param(path, value, "必须是整数（单位：分）")
    if not 0 < value <= _MAX_TOTAL:
        raise _param(path, value, f"必须大于等于1且小于等于{_MAX_TOTAL}")
    return value


def _currency(data: Mapping[str, Any], where: str, *, required: bool) -> str:
    currency = _string(data, "currency", where, required=required, max_len=16) or "CNY"
    if currency != "CNY":
        raise _param(f"{where}/currency", currency, "仅支持CNY")
    return currency


def _url(data: Mapping[str, Any], name: str, where: str, *, required: bool) -> str:
    url = _string(data, name, where, required=required, max_len=256)
    if url and (not re.fullmatch(r"https?://[^\s?#]+", url, re.ASCII)):
        raise _param(f"{where}/{name}", url, "必须是不带参数的http(s)地址")
    return url


def _half_up_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


# -- the channel -----------------------------------------------------------------------


class WechatSimulator:
    """WeChat Pay's state and behaviour; every public method is thread-safe."""

    def __init__(
        self,
        *,
        store: TradeStore,
        scheduler: DeliveryScheduler,
        clock: Clock,
        time_factor: float,
        bills_ready_immediately: bool = False,
        public_key: rsa.RSAPrivateKey | str | bytes | None = None,
        platform_key: rsa.RSAPrivateKey | str | bytes | None = None,
        resigner: ResigningTransport | None = None,
    ) -> None:
        self._store = store
        self._lock: threading.RLock = store.lock
        self._scheduler = scheduler
        self._clock = clock
        self._time_factor = time_factor
        self._bills_ready_immediately = bills_ready_immediately
        self._public_key = _private_key(public_key, "wechat_public_key")
        self._first_platform_key = _private_key(platform_key, "wechat_platform_key")
        self._certificates: list[PlatformCertificate] = []
        self._retired: list[PlatformCertificate] = []
        self._merchants: dict[str, WechatMerchant] = {}
        self._tokens: dict[str, str] = {}
        self._bill_links: dict[str, _BillLink] = {}
        self._refund_due: dict[str, datetime] = {}
        self._refund_notify: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._prefix = f"{secrets.randbelow(1_000_000):06d}"
        self._serial = 0
        if resigner is not None:
            resigner.register(CHANNEL, self._resign)

    # -- keys and certificates --------------------------------------------------

    def _wechatpay_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._public_key is None:
                self._public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._public_key

    @property
    def public_key_pem(self) -> str:
        """The WeChat Pay public key (微信支付公钥), PEM."""
        return public_key_pem(self._wechatpay_key().public_key())

    @property
    def public_key_id(self) -> str:
        """Its id, ``PUB_KEY_ID_…``: the ``Wechatpay-Serial`` of public-key mode."""
        return public_key_id(self._wechatpay_key().public_key())

    def certificates(self) -> list[PlatformCertificate]:
        """The platform certificates in force, oldest first (one is made on first need)."""
        with self._lock:
            if not self._certificates:
                self._certificates.append(
                    issue_platform_certificate(self._clock.now(), self._first_platform_key)
                )
                self._first_platform_key = None
            return list(self._certificates)

    def newest_certificate(self) -> PlatformCertificate:
        return self.certificates()[-1]

    @property
    def ca_certificate_pem(self) -> str:
        """The sandbox CA that issued the platform certificates, PEM."""
        return sandbox_ca().pem

    def rotate_certificate(
        self, key: rsa.RSAPrivateKey | str | bytes | None = None
    ) -> PlatformCertificate:
        """Issue a new platform certificate; the old ones stay valid (overlap).

        Responses and notifications are signed with the newest from now on.
        """
        new_key = _private_key(key, "key")
        with self._lock:
            self.certificates()
            cert = issue_platform_certificate(self._clock.now(), new_key)
            self._certificates.append(cert)
            return cert

    def retire_certificate(self, serial_no: str) -> None:
        """End the overlap: drop a platform certificate (never the last one)."""
        with self._lock:
            certs = self.certificates()
            kept = [c for c in certs if c.serial_no != serial_no.upper()]
            if len(kept) == len(certs):
                raise InvalidInputError(f"no platform certificate {serial_no!r}")
            if not kept:
                raise InvalidInputError("the last platform certificate cannot be retired")
            self._retired.extend(c for c in certs if c not in kept)
            self._certificates = kept

    def _signer(self, merchant: WechatMerchant | None) -> tuple[rsa.RSAPrivateKey, str]:
        if merchant is not None and merchant.key_mode == "certificate":
            cert = self.newest_certificate()
            return cert.key, cert.serial_no
        return self._wechatpay_key(), self.public_key_id

    def sign(self, merchant: WechatMerchant | None, body: bytes) -> list[tuple[str, str]]:
        """The ``Wechatpay-*`` headers for ``body``, in the merchant's key mode, now."""
        key, serial = self._signer(merchant)
        return signed_headers(key, serial, body, self._clock.now())

    def _resign(self, mch_id: str, headers: httpx.Headers, body: bytes) -> list[tuple[str, str]]:
        """Fresh signature headers for a notification attempt, if its current
        signature is genuine (a forged one, from a delivery fault, stays forged)."""
        with self._lock:
            merchant = self._merchants.get(mch_id)
            keys = [c.key.public_key() for c in [*self._certificates, *self._retired]]
        if self._public_key is not None:
            keys.append(self._public_key.public_key())
        message = response_message(
            headers.get("Wechatpay-Timestamp", ""), headers.get("Wechatpay-Nonce", ""), body
        )
        signature = headers.get("Wechatpay-Signature", "")
        for key in keys:
            try:
                rsa_verify(key, message, signature)
            except SignatureError:
                continue
            return self.sign(merchant, body)
        return []

    # -- merchants ----------------------------------------------------------------

    def add_merchant(self, merchant: WechatMerchant) -> WechatMerchant:
        """Register (or replace) a merchant."""
        with self._lock:
            self._merchants[merchant.mch_id] = merchant
        return merchant

    def merchant(self, mch_id: str) -> WechatMerchant:
        with self._lock:
            try:
                return self._merchants[mch_id]
            except KeyError:
                raise UnknownMerchantError(
                    f"no WeChat Pay merchant {mch_id!r} is registered"
                ) from None

    def merchants(self) -> list[WechatMerchant]:
        with self._lock:
            return list(self._merchants.values())

    # -- faults -------------------------------------------------------------------------

    def add_fault(
        self,
        code: str,
        *,
        times: int = 1,
        path: str | None = None,
        mch_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` authenticated requests (to paths starting with
        ``path``, of merchant ``mch_id``, if given) with the error ``code``."""
        if code not in ERROR_STATUS:
            raise InvalidInputError(f"unknown WeChat Pay error code {code!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise InvalidInputError("times must be a positive integer")
        with self._lock:
            self._faults.append(_Fault(code, message, times, path, mch_id))

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def _take_fault(self, path: str, mch_id: str) -> WechatFailure | None:
        for fault in self._faults:
            if (fault.path is None or path.startswith(fault.path)) and fault.mch_id in (
                None,
                mch_id,
            ):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return WechatFailure(fault.code, fault.message)
        return None

    # -- the API ------------------------------------------------------------------------

    def handle(
        self,
        *,
        method: str,
        path: str,
        targets: Sequence[str],
        query: Mapping[str, str],
        authorization: Sequence[str],
        body: bytes,
        base_url: str,
    ) -> WechatReply:
        """Answer one ``/v3/...`` request.

        ``path`` is the decoded path (for routing); ``targets`` the forms of the
        request target (path and query) the signature may have been made over,
        the raw one as received first.
        """
        self.close_expired()
        self.settle_due_refunds()
        merchant: WechatMerchant | None = None
        try:
            handler, groups = _route(method, path)
            merchant = self._authenticate(method, targets, authorization, body)
            call = _Call(merchant, query, body, base_url.rstrip("/"), groups)
            with self._lock:
                fault = self._take_fault(path, merchant.mch_id)
                if fault is not None:
                    raise fault
                answer = handler(self, call)
        except WechatFailure as failure:
            data = render_json(failure.body())
            return WechatReply(failure.status, data, tuple(self.sign(merchant, data)))
        if answer.raw is not None:
            return WechatReply(answer.status, answer.raw, (), answer.content_type)
        data = b"" if answer.data is None else render_json(answer.data)
        return WechatReply(answer.status, data, tuple(self.sign(merchant, data)))

    def error_reply(self, code: str, mch_id: str | None, message: str | None = None) -> WechatReply:
        """A signed error answer (``SYSTEM_ERROR``: HTTP 500, …) to merchant ``mch_id``."""
        status = ERROR_STATUS.get(code, 500)
        text = message or DEFAULT_MESSAGES.get(code, "系统错误，请稍后重试")
        data = render_json({"code": code, "message": text})
        with self._lock:
            merchant = self._merchants.get(mch_id or "")
        return WechatReply(status, data, tuple(self.sign(merchant, data)))

    def _authenticate(
        self, method: str, targets: Sequence[str], authorization: Sequence[str], body: bytes
    ) -> WechatMerchant:
        if not authorization:
            raise WechatFailure("SIGN_ERROR", "Http头缺少Authorization或格式错误")
        if len(authorization) > 1:
            raise WechatFailure("SIGN_ERROR", "Http头Authorization重复")
        parsed = parse_authorization(authorization[0])
        if isinstance(parsed, str):
            raise WechatFailure("SIGN_ERROR", parsed)
        with self._lock:
            merchant = self._merchants.get(parsed.mchid)
        if merchant is None:
            raise WechatFailure("SIGN_ERROR", "商户号不存在或未开通APIv3，签名验证失败")
        if parsed.serial_no.upper() != merchant.merchant_serial_no:
            raise WechatFailure("SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        if not _TIMESTAMP_RE.fullmatch(parsed.timestamp) or (
            abs(int(parsed.timestamp) - self._clock.now().timestamp()) > TIMESTAMP_TOLERANCE
        ):
            raise WechatFailure("SIGN_ERROR", "Http头Authorization中的timestamp已过期或格式错误")
        for target in targets:
            message = request_message(method, target, parsed.timestamp, parsed.nonce_str, body)
            try:
                rsa_verify(merchant.public_key, message, parsed.signature)
            except SignatureError:
                continue
            return merchant
        raise WechatFailure("SIGN_ERROR", "错误的签名，验签失败")

    # -- payments -------------------------------------------------------------------------

    def _create(self, call: _Call) -> _Answer:
        product = call.groups[0]
        data = call.json()
        merchant = call.merchant
        appid = _string(data, "appid", "", max_len=32)
        mchid = _string(data, "mchid", "", max_len=32)
        description = _string(data, "description", "", max_len=127)
        out_trade_no = _string(data, "out_trade_no", "", max_len=32)
        if not _OUT_TRADE_NO_RE.fullmatch(out_trade_no):
            raise _param("/out_trade_no", out_trade_no, "只能是6到32位数字、大小写字母_-*|")
        notify_url = _url(data, "notify_url", "", required=True)
        attach = _string(data, "attach", "", required=False, max_len=128)
        expire_text = _string(data, "time_expire", "", required=False, max_len=64)
        amount = _object(data, "amount", "")
        total = _fen(amount, "total", "/amount")
        currency = _currency(amount, "/amount", required=False)
        openid = ""
        if product == "jsapi":
            openid = _string(_object(data, "payer", ""), "openid", "/payer", max_len=128)
        if product == "h5":
            scene = _object(data, "scene_info", "")
            _string(scene, "payer_client_ip", "/scene_info", max_len=45)
            _string(_object(scene, "h5_info", "/scene_info"), "type", "/scene_info/h5_info")
        expires_at: datetime | None = None
        if expire_text:
            expires_at = parse_time(expire_text)
            if expires_at is None:
                raise _param("/time_expire", expire_text, "必须是RFC3339格式的时间")
        if mchid != merchant.mch_id:
            raise WechatFailure("INVALID_REQUEST", "请求体中的mchid与请求签名的商户号不一致")
        if appid != merchant.app_id:
            raise WechatFailure("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise WechatFailure("INVALID_REQUEST", "订单过期时间time_expire必须晚于当前时间")
        fingerprint = json.dumps(
            [product, appid, description, total, currency, notify_url, attach, openid],
            ensure_ascii=False,
        )
        existing = self._store.find(CHANNEL, merchant.mch_id, out_trade_no=out_trade_no)
        if existing is not None:
            if existing.state is TradeState.PAID:
                raise WechatFailure("ORDERPAID", "该订单已支付")
            if existing.state is not TradeState.PENDING:
                raise WechatFailure("ORDER_CLOSED", "订单已关闭")
            if existing.extra.get("fingerprint") != fingerprint:
                raise WechatFailure(
                    "OUT_TRADE_NO_USED", "商户订单号重复：同一笔交易不能以不同参数多次提交"
                )
            return _Answer(data=self._created(existing, call.base_url))
        self._serial += 1
        trade = Trade(
            channel=CHANNEL,
            merchant_id=merchant.mch_id,
            trade_no=f"4200{self._prefix}{now.astimezone(CHINA_TZ):%Y%m%d}{self._serial:010d}",
            out_trade_no=out_trade_no,
            amount=Money(total, currency),
            subject=description,
            state=TradeState.PENDING,
            created_at=now,
            product=product,
            notify_url=notify_url,
            buyer_id=openid or None,
            expires_at=expires_at,
            extra={
                "appid": appid,
                "attach": attach,
                "fingerprint": fingerprint,
                "pay_token": secrets.token_urlsafe(12),
                "prepay_id": f"wx{now.astimezone(CHINA_TZ):%d%H%M%S}{secrets.token_hex(13)}00",
                "trade_type": _TRADE_TYPES[product],
            },
        )
        self._store.add_trade(trade)
        self._tokens[trade.extra["pay_token"]] = trade.trade_no
        return _Answer(data=self._created(trade, call.base_url))

    def _created(self, trade: Trade, base_url: str) -> dict[str, Any]:
        if trade.product == "native":
            return {"code_url": self.pay_url(trade, base_url)}
        if trade.product == "h5":
            return {"h5_url": self.pay_url(trade, base_url)}
        return {"prepay_id": trade.extra["prepay_id"]}

    def pay_url(self, trade: Trade, base_url: str) -> str:
        """The sandbox page showing the QR content and a Pay button."""
        return f"{base_url.rstrip('/')}/wechat/pay/{trade.extra['pay_token']}"

    def _query_mchid(self, call: _Call) -> None:
        mchid = call.query.get("mchid", "")
        if not mchid:
            raise WechatFailure(
                "PARAM_ERROR",
                "输入源“/query/mchid”映射到字段校验失败：字段缺失",
                {"location": "query", "field": "mchid", "issue": "字段缺失"},
            )
        if mchid != call.merchant.mch_id:
            raise WechatFailure("INVALID_REQUEST", "查询参数mchid与请求签名的商户号不一致")

    def _query_by_out_no(self, call: _Call) -> _Answer:
        self._query_mchid(call)
        trade = self._store.find(CHANNEL, call.merchant.mch_id, out_trade_no=call.groups[0])
        if trade is None:
            raise WechatFailure("ORDER_NOT_EXIST", "订单不存在")
        return _Answer(data=self.transaction_json(trade))

    def _query_by_id(self, call: _Call) -> _Answer:
        self._query_mchid(call)
        trade = self._store.find(CHANNEL, call.merchant.mch_id, trade_no=call.groups[0])
        if trade is None or trade.paid_at is None:
            # A transaction id exists only once the buyer has paid.
            raise WechatFailure("ORDER_NOT_EXIST", "订单不存在")
        return _Answer(data=self.transaction_json(trade))

    def transaction_json(self, trade: Trade) -> dict[str, Any]:
        """The query answer (and, for a payment, the notification's resource)."""
        state = wechat_trade_state(trade)
        currency = trade.amount.currency
        data: dict[str, Any] = {
            "appid": trade.extra.get("appid", ""),
            "mchid": trade.merchant_id,
            "out_trade_no": trade.out_trade_no,
        }
        if trade.paid_at is not None:
            data["transaction_id"] = trade.trade_no
            data["trade_type"] = trade.extra.get("trade_type", "")
        data["trade_state"] = state
        data["trade_state_desc"] = _STATE_DESC[state]
        if trade.paid_at is not None:
            data["bank_type"] = trade.extra.get("bank_type", "OTHERS")
        data["attach"] = trade.extra.get("attach", "")
        if trade.paid_at is not None:
            data["success_time"] = format_time(trade.paid_at)
            data["payer"] = {"openid": trade.buyer_id or DEFAULT_OPENID}
            data["amount"] = {
                "total": trade.amount.minor,
                "payer_total": trade.amount.minor,
                "currency": currency,
                "payer_currency": currency,
            }
        else:
            data["amount"] = {
                "total": trade.amount.minor,
                "currency": currency,
                "payer_currency": currency,
            }
        data["promotion_detail"] = []
        return data

    def _close(self, call: _Call) -> _Answer:
        data = call.json()
        mchid = _string(data, "mchid", "", max_len=32)
        if mchid != call.merchant.mch_id:
            raise WechatFailure("INVALID_REQUEST", "请求体中的mchid与请求签名的商户号不一致")
        trade = self._store.find(CHANNEL, call.merchant.mch_id, out_trade_no=call.groups[0])
        if trade is None:
            raise WechatFailure("ORDER_NOT_EXIST", "订单不存在")
        if trade.state is TradeState.PAID:
            raise WechatFailure("ORDERPAID", "订单已支付，不能关闭")
        if trade.state is TradeState.PENDING:
            self._close_trade(trade, "merchant")
        return _Answer(status=204)

    def _close_trade(self, trade: Trade, reason: str) -> Trade:
        closed = replace(
            trade, state=TradeState.CLOSED, closed_at=self._clock.now(), close_reason=reason
        )
        self._store.replace_trade(closed)
        return closed

    # -- refunds --------------------------------------------------------------------------

    def _find_refund(self, mch_id: str, out_refund_no: str) -> Refund | None:
        for refund in self._store.refunds(CHANNEL):
            if refund.merchant_id == mch_id and refund.out_refund_no == out_refund_no:
                return refund
        return None

    def _refund(self, call: _Call) -> _Answer:
        data = call.json()
        merchant = call.merchant
        transaction_id = _string(data, "transaction_id", "", required=False, max_len=32)
        out_trade_no = _string(data, "out_trade_no", "", required=False, max_len=32)
        if not transaction_id and not out_trade_no:
            raise _param("/transaction_id", None, "transaction_id和out_trade_no必须二选一")
        out_refund_no = _string(data, "out_refund_no", "", max_len=64)
        if not _OUT_REFUND_NO_RE.fullmatch(out_refund_no):
            raise _param("/out_refund_no", out_refund_no, "只能是数字、大小写字母_-|*@")
        reason = _string(data, "reason", "", required=False, max_len=80)
        notify_url = _url(data, "notify_url", "", required=False)
        funds = _string(data, "funds_account", "", required=False, max_len=32)
        if funds and funds != "AVAILABLE":
            raise _param("/funds_account", funds, "仅支持AVAILABLE")
        amount = _object(data, "amount", "")
        refund_fen = _fen(amount, "refund", "/amount")
        total_fen = _fen(amount, "total", "/amount")
        currency = _currency(amount, "/amount", required=True)
        if transaction_id:
            trade = self._store.find(CHANNEL, merchant.mch_id, trade_no=transaction_id)
            if trade is not None and trade.paid_at is None:
                trade = None
            if trade is not None and out_trade_no and trade.out_trade_no != out_trade_no:
                raise WechatFailure("INVALID_REQUEST", "transaction_id与out_trade_no不是同一笔订单")
        else:
            trade = self._store.find(CHANNEL, merchant.mch_id, out_trade_no=out_trade_no)
        existing = self._find_refund(merchant.mch_id, out_refund_no)
        if existing is not None:
            if (
                trade is None
                or existing.trade_no != trade.trade_no
                or existing.amount.minor != refund_fen
            ):
                raise WechatFailure(
                    "INVALID_REQUEST", "退款单号out_refund_no已存在，且请求参数与原退款请求不一致"
                )
            return _Answer(data=self.refund_json(existing, trade))
        if trade is None:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "订单不存在")
        if trade.state is TradeState.PAID and (
            total_fen != trade.amount.minor or currency != trade.amount.currency
        ):
            raise WechatFailure("INVALID_REQUEST", "订单金额amount.total与原订单金额不一致")
        refund = self._apply_refund(
            merchant,
            trade,
            Money(refund_fen, currency),
            out_refund_no=out_refund_no,
            reason=reason,
            notify_url=notify_url,
        )
        return _Answer(data=self.refund_json(refund, self._store.get(trade.trade_no)))

    def _apply_refund(
        self,
        merchant: WechatMerchant,
        trade: Trade,
        money: Money,
        *,
        out_refund_no: str,
        reason: str,
        notify_url: str,
    ) -> Refund:
        """Accept a refund (``PROCESSING``) under WeChat's rules, or raise the failure."""
        if trade.state is not TradeState.PAID:
            raise WechatFailure(
                "INVALID_REQUEST",
                "订单未支付，不能退款" if trade.paid_at is None else "订单状态不允许退款",
            )
        if money.currency != trade.amount.currency:
            raise WechatFailure("INVALID_REQUEST", "退款币种与原订单不一致")
        if money > trade.refundable:
            raise WechatFailure(
                "INVALID_REQUEST",
                "订单已全额退款" if trade.refundable.is_zero() else "申请退款金额超过订单可退金额",
            )
        currency = money.currency
        now = self._clock.now()
        refunded = trade.refunded + money
        full = refunded == trade.amount
        returned = sum(
            (
                r.fee_returned
                for r in self._store.refunds(CHANNEL)
                if r.trade_no == trade.trade_no and r.status != "CLOSED"
            ),
            Money.zero(currency),
        )
        if full:
            fee_back = trade.fee - returned
        else:
            share = _half_up_div(trade.fee.minor * money.minor, trade.amount.minor)
            fee_back = Money(share, currency)
        self._serial += 1
        refund = Refund(
            channel=CHANNEL,
            merchant_id=merchant.mch_id,
            refund_no=f"5030{self._prefix}{now.astimezone(CHINA_TZ):%Y%m%d}{self._serial:011d}",
            out_refund_no=out_refund_no,
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            amount=money,
            refunded_total=refunded,
            fee_returned=fee_back,
            created_at=now,
            reason=reason,
            full=full,
            status="PROCESSING",
        )
        self._store.add_refund(refund)
        changed = replace(trade, refunded=refunded, extra={**trade.extra, "refund_requested": "1"})
        self._store.replace_trade(changed)
        delay = timedelta(seconds=merchant.refund_delay / self._time_factor)
        self._refund_due[refund.refund_no] = now + delay
        if notify_url:
            self._refund_notify[refund.refund_no] = notify_url
        return refund

    def portal_refund(
        self,
        mch_id: str,
        out_trade_no: str,
        amount: Money,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
        notify_url: str | None = None,
    ) -> Refund:
        """Refund as the merchant platform (商户平台) would: the API's rules, no request.

        ``out_refund_no`` (None: a new one) makes it idempotent."""
        with self._lock:
            merchant = self.merchant(mch_id)
            trade = self.trade(mch_id, out_trade_no)
            number = out_refund_no or f"PORTAL-{secrets.token_hex(8).upper()}"
            existing = self._find_refund(mch_id, number)
            if existing is not None:
                if existing.trade_no != trade.trade_no or existing.amount != amount:
                    raise InvalidInputError(f"refund {number} exists with another trade or amount")
                return existing
            try:
                return self._apply_refund(
                    merchant,
                    trade,
                    amount,
                    out_refund_no=number,
                    reason=reason,
                    notify_url=notify_url or "",
                )
            except WechatFailure as failure:
                raise TradeStateError(f"{failure.code}: {failure.message}") from None

    def _refund_query(self, call: _Call) -> _Answer:
        refund = self._find_refund(call.merchant.mch_id, call.groups[0])
        if refund is None:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "退款单不存在")
        return _Answer(data=self.refund_json(refund, self._store.get(refund.trade_no)))

    def refund_json(self, refund: Refund, trade: Trade | None) -> dict[str, Any]:
        total = trade.amount.minor if trade is not None else refund.amount.minor
        data: dict[str, Any] = {
            "refund_id": refund.refund_no,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.trade_no,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
        }
        if refund.status == "SUCCESS" and refund.settled_at is not None:
            data["success_time"] = format_time(refund.settled_at)
        data.update(
            {
                "create_time": format_time(refund.created_at),
                "status": refund.status,
                "funds_account": "AVAILABLE",
                "amount": {
                    "total": total,
                    "refund": refund.amount.minor,
                    "from": [],
                    "payer_total": total,
                    "payer_refund": refund.amount.minor,
                    "settlement_refund": refund.amount.minor,
                    "settlement_total": total,
                    "discount_refund": 0,
                    "currency": refund.amount.currency,
                    "refund_fee": refund.fee_returned.minor,
                },
                "promotion_detail": [],
            }
        )
        return data

    def settle_due_refunds(self) -> list[Refund]:
        """Move every ``PROCESSING`` refund whose delay has passed to ``SUCCESS`` (notified)."""
        now = self._clock.now()
        with self._lock:
            due = [
                r
                for r in self._store.refunds(CHANNEL)
                if r.status == "PROCESSING" and self._refund_due.get(r.refund_no, now) <= now
            ]
            return [self._settle(r, "SUCCESS") for r in due]

    def settle_refund(self, mch_id: str, out_refund_no: str, status: str = "SUCCESS") -> Refund:
        """End a ``PROCESSING`` refund now: ``SUCCESS``, ``ABNORMAL`` or ``CLOSED`` (notified)."""
        if status not in _REFUND_EVENTS:
            raise InvalidInputError("status must be SUCCESS, ABNORMAL or CLOSED")
        with self._lock:
            self.merchant(mch_id)
            refund = self.refund(mch_id, out_refund_no)
            if refund.status != "PROCESSING":
                raise TradeStateError(f"refund {out_refund_no} is {refund.status}, not PROCESSING")
            return self._settle(refund, status)

    def refund(self, mch_id: str, out_refund_no: str) -> Refund:
        with self._lock:
            refund = self._find_refund(mch_id, out_refund_no)
        if refund is None:
            raise TradeNotFoundError(f"no WeChat Pay refund {out_refund_no!r} of {mch_id!r}")
        return refund

    def _settle(self, refund: Refund, status: str) -> Refund:
        now = self._clock.now()
        settled = replace(refund, status=status, settled_at=now)
        self._store.replace_refund(settled)
        self._refund_due.pop(refund.refund_no, None)
        trade = self._store.get(refund.trade_no)
        if trade is not None and status == "CLOSED":
            trade = replace(trade, refunded=trade.refunded - refund.amount)
            self._store.replace_trade(trade)
        url = self._refund_notify.get(refund.refund_no)
        if url and trade is not None:
            self._notify_refund(settled, trade, url)
        return settled

    # -- certificates -------------------------------------------------------------------

    def _list_certificates(self, call: _Call) -> _Answer:
        items = []
        for cert in self.certificates():
            nonce = new_nonce(12)
            items.append(
                {
                    "serial_no": cert.serial_no,
                    "effective_time": format_time(cert.effective_time),
                    "expire_time": format_time(cert.expire_time),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": aes_gcm_encrypt(
                            call.merchant.api_v3_key,
                            nonce.encode("ascii"),
                            b"certificate",
                            cert.pem.encode("ascii"),
                        ),
                    },
                }
            )
        return _Answer(data={"data": items})

    # -- bills --------------------------------------------------------------------------

    def _tradebill(self, call: _Call) -> _Answer:
        bill_date = call.query.get("bill_date", "")
        if not _DATE_RE.fullmatch(bill_date):
            raise _query_param("bill_date", bill_date, "必须是yyyy-MM-dd格式的日期")
        try:
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise _query_param("bill_date", bill_date, "必须是yyyy-MM-dd格式的日期") from None
        bill_type = call.query.get("bill_type", "") or "ALL"
        if bill_type not in WECHAT_BILL_TYPES:
            raise _query_param("bill_type", bill_type, "必须是ALL、SUCCESS或REFUND")
        tar_type = call.query.get("tar_type", "")
        if tar_type not in ("", "GZIP"):
            raise _query_param("tar_type", tar_type, "仅支持GZIP")
        now = self._clock.now().astimezone(CHINA_TZ)
        if day > now.date():
            raise WechatFailure("INVALID_REQUEST", "账单日期bill_date不能晚于当前日期")
        if not self._bill_ready(day, now):
            raise WechatFailure("STATEMENT_CREATING", "账单生成中，请稍后再试")
        text, rows = self._bill_text(call.merchant, day, bill_type)
        if rows == 0:
            raise WechatFailure("NO_STATEMENT_EXIST", "账单文件不存在：当日无交易")
        plain = self._bill_bytes(call.merchant, text)
        digest = hashlib.sha1(plain, usedforsecurity=False).hexdigest()
        data = gzip.compress(plain, mtime=0) if tar_type == "GZIP" else plain
        token = secrets.token_urlsafe(24)
        expires = self._clock.now() + _BILL_LINK_TTL
        self._bill_links[token] = _BillLink(call.merchant.mch_id, data, expires)
        for stale in [t for t, link in self._bill_links.items() if link.expires_at < now]:
            del self._bill_links[stale]
        return _Answer(
            data={
                "hash_type": "SHA1",
                "hash_value": digest,
                "download_url": f"{call.base_url}/v3/billdownload/file?token={token}",
            }
        )

    def _bill_ready(self, day: date, now: datetime) -> bool:
        if self._bills_ready_immediately:
            return True
        return now >= datetime.combine(day + timedelta(days=1), _BILL_READY_AT, CHINA_TZ)

    def _bill_text(self, merchant: WechatMerchant, day: date, bill_type: str) -> tuple[str, int]:
        trades, refunds = self._store.bill_faults.apply(
            CHANNEL, merchant.mch_id, day, self._store.trades(CHANNEL), self._store.refunds(CHANNEL)
        )
        text = wechat_bill_csv(
            mch_id=merchant.mch_id,
            bill_date=day,
            trades=trades,
            refunds=refunds,
            fee_rate=merchant.fee_rate,
            bill_type=bill_type,
        )
        return text, text.count("\r\n") - 3

    @staticmethod
    def _bill_bytes(merchant: WechatMerchant, text: str) -> bytes:
        return ("\ufeff" if merchant.bill_bom else "").encode("utf-8") + text.encode("utf-8")

    def _bill_download(self, call: _Call) -> _Answer:
        token = call.query.get("token", "")
        link = self._bill_links.get(token)
        if link is None or self._clock.now() > link.expires_at:
            raise WechatFailure("INVALID_REQUEST", "账单下载链接无效或已过期（有效期30秒）")
        if link.mch_id != call.merchant.mch_id:
            raise WechatFailure("NO_AUTH", "无权下载其他商户的账单")
        return _Answer(raw=link.data)

    def bill(self, mch_id: str, bill_date: date, bill_type: str = "ALL") -> bytes:
        """A day's bill file (uncompressed, BOM per merchant), whatever the time."""
        if bill_type not in WECHAT_BILL_TYPES:
            raise InvalidInputError("bill_type must be ALL, SUCCESS or REFUND")
        merchant = self.merchant(mch_id)
        with self._lock:
            text, _ = self._bill_text(merchant, bill_date, bill_type)
        return self._bill_bytes(merchant, text)

    # -- what the buyer, the control API and the Python API do -------------------------

    def trade(self, mch_id: str, out_trade_no: str) -> Trade:
        trade = self._store.find(CHANNEL, mch_id, out_trade_no=out_trade_no)
        if trade is None:
            raise TradeNotFoundError(f"no WeChat Pay trade {out_trade_no!r} of {mch_id!r}")
        return trade

    def trade_by_token(self, token: str) -> Trade:
        with self._lock:
            number = self._tokens.get(token)
            trade = None if number is None else self._store.get(number)
        if trade is None:
            raise TradeNotFoundError("no WeChat Pay trade has that payment page")
        return trade

    def pay(self, trade: Trade, *, openid: str | None = None) -> Trade:
        """The buyer pays: ``NOTPAY`` → ``SUCCESS``; ``TRANSACTION.SUCCESS`` is scheduled."""
        with self._lock:
            self.close_expired()
            current = self._store.get(trade.trade_no)
            if current is None or current.channel != CHANNEL:
                raise TradeNotFoundError(f"no WeChat Pay trade {trade.trade_no!r}")
            if current.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"trade {current.out_trade_no} is {wechat_trade_state(current)}, not NOTPAY"
                )
            merchant = self.merchant(current.merchant_id)
            if current.product == "jsapi" and current.buyer_id:
                if openid and openid != current.buyer_id:
                    raise TradeStateError("a JSAPI trade is paid by the payer.openid it names")
                openid = current.buyer_id
            buyer = openid or DEFAULT_OPENID
            fee = (Decimal(current.amount.minor) * merchant.fee_rate).quantize(
                Decimal(1), ROUND_HALF_UP
            )
            paid = replace(
                current,
                state=TradeState.PAID,
                paid_at=self._clock.now(),
                buyer_id=buyer,
                fee=Money(int(fee), current.amount.currency),
                extra={**current.extra, "bank_type": "OTHERS"},
            )
            self._store.replace_trade(paid)
            self._notify_transaction(paid, merchant)
            return paid

    def close(self, trade: Trade) -> Trade:
        """Close an unpaid trade (as the merchant's close API would; not notified)."""
        with self._lock:
            current = self._store.get(trade.trade_no)
            if current is None or current.state is not TradeState.PENDING:
                state = "unknown" if current is None else wechat_trade_state(current)
                raise TradeStateError(f"trade {trade.out_trade_no} is {state}, not NOTPAY")
            return self._close_trade(current, "merchant")

    def close_expired(self) -> list[Trade]:
        """Close every unpaid trade whose ``time_expire`` has passed (WeChat notifies nothing)."""
        now = self._clock.now()
        with self._lock:
            due = self._store.expired(CHANNEL, now)
            return [self._close_trade(t, "timeout") for t in due]

    # -- notifications ----------------------------------------------------------------

    def _notify_transaction(self, trade: Trade, merchant: WechatMerchant) -> None:
        if not trade.notify_url:
            return
        resource = self.transaction_json(trade)
        resource.pop("promotion_detail", None)
        resource["trade_state"] = "SUCCESS"
        resource["trade_state_desc"] = _STATE_DESC["SUCCESS"]
        self._enqueue(
            merchant,
            trade,
            url=trade.notify_url,
            event_type="TRANSACTION.SUCCESS",
            summary="支付成功",
            original_type="transaction",
            resource=resource,
        )

    def _notify_refund(self, refund: Refund, trade: Trade, url: str) -> None:
        merchant = self.merchant(refund.merchant_id)
        event_type, summary = _REFUND_EVENTS[refund.status]
        resource: dict[str, Any] = {
            "mchid": refund.merchant_id,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.trade_no,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_no,
            "refund_status": refund.status,
        }
        if refund.status == "SUCCESS" and refund.settled_at is not None:
            resource["success_time"] = format_time(refund.settled_at)
        resource["user_received_account"] = "支付用户零钱"
        resource["amount"] = {
            "total": trade.amount.minor,
            "refund": refund.amount.minor,
            "payer_total": trade.amount.minor,
            "payer_refund": refund.amount.minor,
        }
        self._enqueue(
            merchant,
            trade,
            url=url,
            event_type=event_type,
            summary=summary,
            original_type="refund",
            resource=resource,
        )

    def _enqueue(
        self,
        merchant: WechatMerchant,
        trade: Trade,
        *,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        resource: Mapping[str, Any],
    ) -> None:
        now = self._clock.now()
        nonce = new_nonce(12)
        event_id = f"EV-{now.astimezone(CHINA_TZ):%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"
        envelope = {
            "id": event_id,
            "create_time": format_time(now),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": aes_gcm_encrypt(
                    merchant.api_v3_key,
                    nonce.encode("ascii"),
                    original_type.encode("ascii"),
                    render_json(resource),
                ),
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
        body = render_json(envelope)
        headers = (
            ("Content-Type", "application/json"),
            *self.sign(merchant, body),
            (RESIGN_HEADER, f"{CHANNEL}:{merchant.mch_id}"),
        )
        notification = OutboundNotification(
            id=self._scheduler.new_id(),
            channel=CHANNEL,
            merchant_id=merchant.mch_id,
            event_id=event_id,
            kind=event_type,
            trade_no=trade.trade_no,
            url=url,
            headers=headers,
            body=body,
            created_at=now,
            delays=scaled(WECHAT_RETRY_DELAYS, self._time_factor),
        )
        self._scheduler.enqueue(notification, _acknowledged)


def _acknowledged(response: httpx.Response) -> bool:
    """WeChat Pay stops resending on any 2xx (200 or 204 with no body is the rule)."""
    return 200 <= response.status_code < 300


def _query_param(name: str, value: str, issue: str) -> WechatFailure:
    return WechatFailure(
        "PARAM_ERROR",
        f"输入源“/query/{name}”映射到字段校验失败：{issue}",
        {"location": "query", "field": name, "value": value, "issue": issue},
    )


def _private_key(
    key: rsa.RSAPrivateKey | str | bytes | None, what: str
) -> rsa.RSAPrivateKey | None:
    if key is None or isinstance(key, rsa.RSAPrivateKey):
        return key
    try:
        return load_private_key(key)
    except ConfigurationError as exc:
        raise InvalidInputError(f"{what}: {exc.message}") from None


_ROUTES: Final[tuple[tuple[str, re.Pattern[str], _Handler], ...]] = (
    (
        "POST",
        re.compile(r"/v3/pay/transactions/(native|jsapi|app|h5)"),
        WechatSimulator._create,
    ),
    (
        "GET",
        re.compile(r"/v3/pay/transactions/out-trade-no/([^/]+)"),
        WechatSimulator._query_by_out_no,
    ),
    ("GET", re.compile(r"/v3/pay/transactions/id/([^/]+)"), WechatSimulator._query_by_id),
    (
        "POST",
        re.compile(r"/v3/pay/transactions/out-trade-no/([^/]+)/close"),
        WechatSimulator._close,
    ),
    ("POST", re.compile(r"/v3/refund/domestic/refunds"), WechatSimulator._refund),
    ("GET", re.compile(r"/v3/refund/domestic/refunds/([^/]+)"), WechatSimulator._refund_query),
    ("GET", re.compile(r"/v3/certificates"), WechatSimulator._list_certificates),
    ("GET", re.compile(r"/v3/bill/tradebill"), WechatSimulator._tradebill),
    ("GET", re.compile(r"/v3/billdownload/file"), WechatSimulator._bill_download),
)


def _route(method: str, path: str) -> tuple[_Handler, tuple[str, ...]]:
    for verb, pattern, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None and verb == method:
            return handler, match.groups()
    raise WechatFailure("NOT_FOUND", f"{method} {path} 不是微信支付APIv3的接口")
