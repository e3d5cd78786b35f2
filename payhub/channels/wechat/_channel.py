"""The WeChat Pay APIv3 channel: sans-I/O flows and pure notification parsing."""

from __future__ import annotations

import binascii
import json
import logging
import platform
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import IO, Any, ClassVar, Final, Self, TypeVar

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ValidationError

from payhub.channels._base import Channel, Flow
from payhub.channels._bills import BillLine, BillStream
from payhub.channels._fundflow import FundFlowLine, FundFlowStream
from payhub.channels._splitting import SplitOperations
from payhub.errors import (
    AmountError,
    ChannelError,
    ConfigurationError,
    CurrencyMismatchError,
    ErrorCode,
    InvalidRequestError,
    NotificationRejected,
    PayhubError,
    ProtocolError,
    SignatureError,
)
from payhub.models import (
    Ack,
    BillRecord,
    Notification,
    NotificationKind,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ResultKind,
)
from payhub.models import order_number_problem as payhub_number_problem
from payhub.money import Money
from payhub.signing import (
    certificate_serial_hex,
    load_certificate,
    load_private_key,
    rsa_oaep_encrypt,
    rsa_sign,
)
from payhub.signing import load_public_key as _load_public_key
from payhub.splits_models import (
    ReceiverBinding,
    ReceiverKind,
    SplitLineResult,
    SplitNotice,
    SplitRequest,
    SplitResult,
    SplitReturnRequest,
    SplitReturnResult,
    SplitStatus,
    TransferRequest,
    TransferResult,
    TransferStatus,
)

from ._bill import (
    SHANGHAI,
    gunzip_bill,
    iter_trade_bill,
    parse_trade_bill,
    verify_bill_file_hash,
    verify_bill_hash,
)
from ._config import WechatPayConfig
from ._errors import error_from_response, shown
from ._fundflow import iter_fundflow_bill
from ._grammar import (
    MAX_MINOR,
    NOTIFICATION_ID,
    OPENID,
    OUT_REFUND_NO,
    OUT_TRADE_NO,
    REFUND_ID,
    TRANSACTION_ID,
    checked_id,
    optional_id,
    order_number_problem,
)
from ._keys import (
    TIMESTAMP_TOLERANCE,
    PlatformKey,
    PlatformKeyring,
    authorization,
    read_signed_headers,
    verify_signed,
)

__all__ = ["WechatPayChannel"]

logger = logging.getLogger("payhub.channels.wechat")

M = TypeVar("M", bound=BaseModel)

_PAY_PATHS: Final[Mapping[PayMethod, str]] = {
    PayMethod.QR: "/v3/pay/transactions/native",
    PayMethod.JSAPI: "/v3/pay/transactions/jsapi",
    PayMethod.APP: "/v3/pay/transactions/app",
    PayMethod.H5: "/v3/pay/transactions/h5",
}
_CERTIFICATES_PATH: Final = "/v3/certificates"
_REFUNDS_PATH: Final = "/v3/refund/domestic/refunds"
_GCM: Final = "AEAD_AES_256_GCM"
_MAX_DESCRIPTION: Final = 127

_TRADE_STATES: Final[Mapping[str, PaymentStatus]] = {
    "SUCCESS": PaymentStatus.PAID,
    "REFUND": PaymentStatus.REFUNDED,
    "NOTPAY": PaymentStatus.PENDING,
    "USERPAYING": PaymentStatus.PENDING,
    "CLOSED": PaymentStatus.CLOSED,
    "REVOKED": PaymentStatus.CLOSED,
    "PAYERROR": PaymentStatus.FAILED,
}
_REFUND_STATES: Final[Mapping[str, RefundStatus]] = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "PROCESSING": RefundStatus.PENDING,
    "CLOSED": RefundStatus.CLOSED,
    "ABNORMAL": RefundStatus.FAILED,
}
_TRANSFER_BILLS_PATH: Final = "/v3/fund-app/mch-transfer/transfer-bills"
#: ``user_name`` is required from 2,000.00 CNY on (WeChat Pay's transfer rules)
_NAME_REQUIRED_FROM: Final = 200_000
_NOT_FOUND: Final = frozenset({"RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST", "NOT_FOUND"})
_SHARING_TYPES: Final[Mapping[ReceiverKind, str]] = {
    ReceiverKind.MERCHANT: "MERCHANT_ID",
    ReceiverKind.OPENID: "PERSONAL_OPENID",
}
#: a profit-sharing receiver's ``result``
_SHARING_RESULTS: Final[Mapping[str, SplitStatus]] = {
    "PENDING": SplitStatus.PROCESSING,
    "SUCCESS": SplitStatus.SUCCEEDED,
    "CLOSED": SplitStatus.FAILED,
}
#: a return order's ``result``
_RETURN_RESULTS: Final[Mapping[str, SplitStatus]] = {
    "PROCESSING": SplitStatus.PROCESSING,
    "SUCCESS": SplitStatus.SUCCEEDED,
    "FAILED": SplitStatus.FAILED,
}
#: a transfer bill's ``state``
_TRANSFER_STATES: Final[Mapping[str, TransferStatus]] = {
    "ACCEPTED": TransferStatus.PROCESSING,
    "PROCESSING": TransferStatus.PROCESSING,
    "WAIT_USER_CONFIRM": TransferStatus.WAIT_USER_CONFIRM,
    "TRANSFERING": TransferStatus.PROCESSING,
    "SUCCESS": TransferStatus.SUCCEEDED,
    "FAIL": TransferStatus.FAILED,
    "CANCELING": TransferStatus.PROCESSING,
    "CANCELLED": TransferStatus.CANCELLED,
}
#: 商家转账 ``out_bill_no``: "只能由数字、大小写字母组成", 5 to 32 characters
_BILL_NO: Final = re.compile(r"[0-9A-Za-z]{5,32}", re.ASCII)
#: notifications about splits and transfers, not payments (parse_split_notification)
_SPLIT_EVENTS: Final = ("PROFITSHARING", "MCHTRANSFER.")
_SPLIT_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}", re.ASCII)
_REFUND_EVENTS: Final[Mapping[str, NotificationKind]] = {
    "REFUND.SUCCESS": NotificationKind.REFUND,
    "REFUND.ABNORMAL": NotificationKind.REFUND_FAILED,
    "REFUND.CLOSED": NotificationKind.REFUND_FAILED,
}



def _token() -> str:
    return secrets.token_hex(16)


def _user_agent() -> str:
    version = getattr(sys.modules.get("payhub"), "__version__", "0")
    return f"payhub/{version} wechatpay-apiv3 Python/{platform.python_version()}"


def _dumps(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _DuplicateKey(ValueError):
    """A JSON object names one key twice."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called by the decoder once per object with its pairs in order: a dict
    # shorter than the list means a repeated key, which JSON parsers resolve
    # differently (last wins here, first elsewhere); so it is refused.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


#: One decoder for every WeChat body: ``raw_decode`` without ``json.loads``'s
#: whitespace handling (done below), refusing repeated keys through the hook.
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object)
_JSON_WS: Final = re.compile(r"[ \t\n\r]*")


def _json_object(content: bytes, what: str) -> dict[str, Any]:
    """``json.loads`` of a UTF-8 JSON object, with the same refusals, and
    refusing an object with a repeated key (non-retryable: it is signed)."""
    try:
        # WeChat Pay speaks UTF-8: decode as such rather than sniff the encoding.
        text = content.decode("utf-8")
        start = 0 if text[:1] == "{" else _JSON_WS.match(text).end()  # type: ignore[union-attr]
        data, end = _DECODER.raw_decode(text, start)
        if end != len(text) and _JSON_WS.match(text, end).end() != len(text):  # type: ignore[union-attr]
            raise ValueError("data after the JSON value")
    except _DuplicateKey:
        raise ProtocolError(
            f"wechat: {what} repeats a key in a JSON object", retryable=False
        ) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"wechat: {what} is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"wechat: {what} is not a JSON object")
    return data


def _str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"wechat: {what} has no {key}")
    return value


def _obj(data: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"wechat: {what} has no {key} object")
    return value


def _time(value: object, what: str) -> datetime | None:
    """An RFC 3339 time such as ``2018-06-08T10:34:56+08:00``; None if absent."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise ProtocolError(f"wechat: {what} is not an RFC 3339 time with an offset")
    return parsed


def _currency(amount: Mapping[str, Any]) -> str:
    currency = amount.get("currency", "CNY")
    if not isinstance(currency, str):
        raise AmountError(f"currency must be a string, got {shown(currency)}")
    return currency


def _fen(amount: Mapping[str, Any], key: str, currency: str, *, least: int = 0) -> Money:
    """``amount[key]``: a JSON integer of fen from ``least`` up to WeChat's limit."""
    money = Money.of_minor_json(amount.get(key), currency, max_minor=MAX_MINOR)
    if money.minor < least:
        raise AmountError(f"wechat: amount.{key} of {money.minor} fen is not a valid amount")
    return money


def _not_above(part: Money, whole: Money, part_name: str, whole_name: str) -> None:
    if part > whole:
        raise AmountError(f"wechat: amount.{part_name} is above amount.{whole_name}")


def _split_no(value: object, grammar: re.Pattern[str] = _SPLIT_NO) -> str:
    """A number put into a URL path or query: its grammar, so nothing is injected."""
    if not isinstance(value, str) or not grammar.fullmatch(value):
        raise InvalidRequestError(f"wechat: not a valid number: {shown(value)}")
    return value


def _overall(processing: bool, lines: list[SplitStatus]) -> SplitStatus:
    """A split's status from its lines: final only when no line is pending."""
    if processing or not lines or SplitStatus.PROCESSING in lines:
        return SplitStatus.PROCESSING
    if all(line is SplitStatus.SUCCEEDED for line in lines):
        return SplitStatus.SUCCEEDED
    if all(line is SplitStatus.FAILED for line in lines):
        return SplitStatus.FAILED
    return SplitStatus.PARTIAL


def _order_no(value: object, what: str = "out_trade_no") -> str:
    problem = payhub_number_problem(value)
    if problem is not None:
        raise InvalidRequestError(f"wechat: {what} {problem}, got {shown(value)}")
    assert isinstance(value, str)  # payhub_number_problem refuses anything else
    return value


class WechatPayChannel(Channel, SplitOperations):
    """One WeChat Pay merchant account, speaking APIv3.

    Every operation is a flow (see :mod:`payhub.channels`): the same code serves
    :class:`~payhub.PayHub` and :class:`~payhub.AsyncPayHub`. ``clock`` (seconds
    since the epoch) and ``nonce`` (a fresh random string) are injectable for
    tests; they default to :func:`time.time` and :func:`secrets.token_hex`.

    >>> channel = WechatPayChannel.from_config("wechat", {...})  # doctest: +SKIP
    >>> hub = PayHub(channels=[channel])  # doctest: +SKIP
    """

    kind: ClassVar[str] = "wechat"
    methods: ClassVar[frozenset[PayMethod]] = frozenset(_PAY_PATHS)
    currencies: frozenset[str] = frozenset({"CNY"})

    def __init__(
        self,
        name: str,
        config: WechatPayConfig | Mapping[str, Any],
        *,
        clock: Callable[[], float] | None = None,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(name)
        self.config = WechatPayConfig.from_mapping(config)
        self._clock = clock or time.time
        self._nonce = nonce or _token
        self._private_key = load_private_key(self.config.merchant_private_key.get())
        # One cipher for the account's life: the API v3 key never changes under it.
        self._aes = AESGCM(self.config.api_v3_key.get())
        self._keys = PlatformKeyring(
            static=self._static_key(),
            interval=self.config.certificate_refresh_interval.total_seconds(),
        )
        self._base = self.config.base_url
        self._base_url = httpx.URL(self._base)
        self._urls = {
            path: httpx.URL(self._base + path)
            for path in (*_PAY_PATHS.values(), _CERTIFICATES_PATH, _REFUNDS_PATH)
        }
        # Every request goes to the API host (a bill download_url is checked to).
        fixed = [
            (b"Host", self._base_url.netloc),
            (b"Accept", b"application/json"),
            (b"User-Agent", _user_agent().encode("ascii")),
        ]
        if self.config.wechatpay_public_key_id is not None:
            fixed.append((b"Wechatpay-Serial", self.config.wechatpay_public_key_id.encode("ascii")))
        self._fixed_headers: tuple[tuple[bytes, bytes], ...] = tuple(fixed)

    def _static_key(self) -> PlatformKey | None:
        config = self.config
        if config.wechatpay_public_key is None or config.wechatpay_public_key_id is None:
            return None
        key = _load_public_key(config.wechatpay_public_key.get())
        return PlatformKey(config.wechatpay_public_key_id, key)

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name, WechatPayConfig.from_mapping(config))

    def max_amount_minor(self) -> int:
        """2**31 - 1 fen: ``amount.total`` is a 32-bit signed integer at WeChat Pay."""
        return MAX_MINOR

    def order_number_problem(self, out_trade_no: str) -> str | None:
        """WeChat Pay's rule: 6-32 ASCII letters, digits, ``_``, ``-``, ``|`` or ``*``."""
        return order_number_problem(out_trade_no)

    @property
    def platform_serials(self) -> list[str]:
        """Serials (or the public key id) the channel can verify signatures of."""
        return self._keys.serials

    # -- requests -----------------------------------------------------------

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        return url if url is not None else httpx.URL(self._base + path)

    def _request(
        self, method: str, url: httpx.URL, body: bytes = b"", serial: str | None = None
    ) -> httpx.Request:
        """A request carrying ``Authorization`` over the exact path and body bytes sent.

        Built complete (``Host`` and ``Content-Length`` included) over a byte
        stream, so httpx adds nothing and re-encodes nothing: the bytes signed
        are the bytes sent, and building costs a third of ``content=``'s.
        ``serial`` names the platform key a field of the body was encrypted
        with (``Wechatpay-Serial``; already sent when a public key id is set).
        """
        header = authorization(
            self._private_key,
            mch_id=self.config.mch_id,
            serial_no=self.config.merchant_serial_no,
            method=method,
            path=url.raw_path,
            timestamp=str(int(self._clock())),
            nonce=self._nonce(),
            body=body,
        )
        headers = [*self._fixed_headers, (b"Authorization", header.encode("ascii"))]
        if serial is not None and self.config.wechatpay_public_key_id is None:
            headers.append((b"Wechatpay-Serial", serial.encode("ascii")))
        if body:
            headers.append((b"Content-Type", b"application/json"))
            headers.append((b"Content-Length", b"%d" % len(body)))
        request = httpx.Request(method, url, headers=headers, stream=httpx.ByteStream(body))
        request.read()  # the body is in memory already; makes request.content available
        return request

    def _call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        serial: str | None = None,
    ) -> Flow[httpx.Response]:
        """Send one signed request; return the verified 2xx response or raise."""
        downloaded = False
        if not self._keys.static and self._keys.claim_download(self._clock()):
            downloaded = True
            yield from self._scheduled_download()
        body = b"" if payload is None else _dumps(payload)
        response = yield self._request(method, self._url(path), body, serial)
        if not response.is_success:
            raise error_from_response(response)
        yield from self._verify_response(response, may_download=not downloaded)
        return response

    def _verify_response(self, response: httpx.Response, *, may_download: bool) -> Flow[None]:
        now = self._clock()
        signed = read_signed_headers(response.headers, now)
        serial = signed[3]
        key = self._keys.lookup(serial, now)
        if key is None and may_download and self._keys.claim_download(now, unknown_serial=True):
            yield from self._download_certificates()
            key = self._keys.lookup(serial, self._clock())
        if key is None:
            raise SignatureError(f"wechat: unknown platform serial {shown(serial)}")
        verify_signed(key, signed, response.content)

    # -- platform certificates ----------------------------------------------

    def _scheduled_download(self) -> Flow[None]:
        if not self._keys.serials:
            yield from self._download_certificates()
            return
        try:
            yield from self._download_certificates()
        except PayhubError as exc:
            # The known certificates still verify; try again next interval.
            logger.warning("%s: platform certificate refresh failed: %s", self.name, exc.message)

    def _download_certificates(self) -> Flow[None]:
        """GET /v3/certificates, decrypt each with the API v3 key, verify, merge.

        The answer is verified with a certificate already known or one it
        contains (the bootstrap); what makes a contained certificate
        trustworthy is that it decrypts under the API v3 key, which only
        WeChat Pay and the merchant hold.
        """
        response = yield self._request("GET", self._url(_CERTIFICATES_PATH))
        if not response.is_success:
            raise error_from_response(response)
        now = self._clock()
        signed = read_signed_headers(response.headers, now)
        items = _json_object(response.content, "certificate list").get("data")
        if not isinstance(items, list):
            raise ProtocolError("wechat: certificate list has no data array")
        fresh: dict[str, PlatformKey] = {}
        for item in items:
            entry = self._decrypt_certificate(item, now)
            if entry is not None:
                fresh[entry.serial] = entry
        serial = signed[3]
        key = self._keys.lookup(serial, now)
        if key is None and serial in fresh:
            candidate = fresh[serial]
            key = candidate.key if candidate.not_before <= now else None
        if key is None:
            raise SignatureError(
                "wechat: certificate list is signed by a certificate neither known nor in it"
            )
        verify_signed(key, signed, response.content)
        self._keys.merge(fresh, now)
        logger.info(
            "%s: platform certificates downloaded: %s", self.name, ", ".join(sorted(fresh))
        )

    def _decrypt_certificate(self, item: object, now: float) -> PlatformKey | None:
        if not isinstance(item, dict):
            raise ProtocolError("wechat: certificate list entry is not an object")
        serial_no = _str(item, "serial_no", "certificate list entry")
        pem = self._decrypt(item.get("encrypt_certificate"), "certificate")
        try:
            cert = load_certificate(pem)
        except ConfigurationError:
            raise ProtocolError("wechat: a platform certificate is unreadable") from None
        serial = certificate_serial_hex(cert)
        if serial != serial_no.upper():
            raise SignatureError("wechat: a platform certificate's serial_no does not match it")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise SignatureError("wechat: a platform certificate is not RSA-2048 or longer")
        not_after = cert.not_valid_after_utc.timestamp()
        if now >= not_after:
            return None
        # The same tolerance as for timestamps: a certificate issued "now" by a
        # host whose clock runs a little ahead is usable at once.
        not_before = cert.not_valid_before_utc.timestamp() - TIMESTAMP_TOLERANCE
        return PlatformKey(serial, key, not_before, not_after)

    def _decrypt(self, resource: object, what: str) -> bytes:
        """AES-256-GCM with the API v3 key; any tampering is a SignatureError."""
        if not isinstance(resource, dict):
            raise ProtocolError(f"wechat: {what} has no encrypted resource")
        if resource.get("algorithm") != _GCM:
            raise SignatureError(f"wechat: {what} is not encrypted with AEAD_AES_256_GCM")
        nonce = resource.get("nonce")
        associated = resource.get("associated_data") or ""
        ciphertext = resource.get("ciphertext")
        if not (
            isinstance(nonce, str) and isinstance(associated, str) and isinstance(ciphertext, str)
        ):
            raise ProtocolError(f"wechat: {what} lacks nonce, associated_data or ciphertext")
        try:
            # strict_mode: the same refusals as b64decode(validate=True), in C.
            raw = binascii.a2b_base64(ciphertext, strict_mode=True)
            return self._aes.decrypt(nonce.encode(), raw, associated.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SignatureError(f"wechat: {what} failed authenticated decryption") from None

    # -- payments -----------------------------------------------------------

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        path = _PAY_PATHS.get(request.method)
        if path is None:
            raise InvalidRequestError(f"wechat: no {request.method.value} payments")
        response = yield from self._call("POST", path, self._pay_payload(request))
        return self._pay_result(request, _json_object(response.content, "pay answer"))

    def _pay_payload(self, request: PaymentRequest) -> dict[str, Any]:
        amount = request.amount
        if amount.currency not in self.currencies:
            raise InvalidRequestError(f"wechat: no payments in {amount.currency}")
        if amount.minor > MAX_MINOR:
            raise AmountError(f"wechat: {amount} is above WeChat Pay's limit of one payment")
        problem = order_number_problem(request.out_trade_no)
        if problem is not None:
            raise InvalidRequestError(f"wechat: {problem}")
        notify_url = request.notify_url or self.config.notify_url
        if notify_url is None:
            raise InvalidRequestError("wechat: a payment needs a notify_url (request or config)")
        if len(request.subject) > _MAX_DESCRIPTION:
            raise InvalidRequestError("wechat: subject (description) is limited to 127 characters")
        payload: dict[str, Any] = {
            "appid": self.config.app_id,
            "mchid": self.config.mch_id,
            "description": request.subject,
            "out_trade_no": request.out_trade_no,
            "notify_url": notify_url,
            "amount": {"total": amount.minor, "currency": amount.currency},
        }
        if request.split:
            payload["settle_info"] = {"profit_sharing": True}
        if request.expires_at is not None:
            payload["time_expire"] = request.expires_at.astimezone(SHANGHAI).isoformat(
                timespec="seconds"
            )
        buyer = request.buyer
        if request.method is PayMethod.JSAPI:
            if buyer is None or not buyer.openid:
                raise InvalidRequestError("wechat: a JSAPI payment needs buyer.openid")
            payload["payer"] = {"openid": buyer.openid}
        elif request.method is PayMethod.H5:
            if buyer is None or not buyer.ip:
                raise InvalidRequestError("wechat: an H5 payment needs buyer.ip")
            payload["scene_info"] = {
                "payer_client_ip": buyer.ip,
                "h5_info": {"type": self.config.h5_type},
            }
        return payload

    def _pay_result(self, request: PaymentRequest, data: dict[str, Any]) -> PaymentResult:
        common: dict[str, Any] = {
            "channel": self.name,
            "out_trade_no": request.out_trade_no,
            "raw": data,
        }
        method = request.method
        if method is PayMethod.QR:
            code_url = _str(data, "code_url", "native pay answer")
            return PaymentResult(kind=ResultKind.QR, qr_code=code_url, **common)
        if method is PayMethod.H5:
            h5_url = _str(data, "h5_url", "H5 pay answer")
            return PaymentResult(kind=ResultKind.REDIRECT, redirect_url=h5_url, **common)
        prepay_id = _str(data, "prepay_id", f"{method.value} pay answer")
        if method is PayMethod.JSAPI:
            params = self.jsapi_params(prepay_id)
            return PaymentResult(kind=ResultKind.JSAPI, app_params=params, **common)
        params = self.app_params(prepay_id)
        return PaymentResult(kind=ResultKind.APP, app_params=params, **common)

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What the page passes to ``WeixinJSBridge`` (``getBrandWCPayRequest``) or
        ``wx.requestPayment``; ``paySign`` signs ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``."""
        app_id, timestamp, nonce = self.config.app_id, str(int(self._clock())), self._nonce()
        package = f"prepay_id={prepay_id}"
        message = f"{app_id}\n{timestamp}\n{nonce}\n{package}\n".encode()
        return {
            "appId": app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": rsa_sign(self._private_key, message),
        }

    def app_params(self, prepay_id: str) -> dict[str, str]:
        """What the app passes to the WeChat SDK's ``PayReq``; ``sign`` signs
        ``appid\\ntimestamp\\nnoncestr\\nprepayid\\n``."""
        app_id, timestamp, nonce = self.config.app_id, str(int(self._clock())), self._nonce()
        message = f"{app_id}\n{timestamp}\n{nonce}\n{prepay_id}\n".encode()
        return {
            "appid": app_id,
            "partnerid": self.config.mch_id,
            "prepayid": prepay_id,
            "package": "Sign=WXPay",
            "noncestr": nonce,
            "timestamp": timestamp,
            "sign": rsa_sign(self._private_key, message),
        }

    def query(
        self, out_trade_no: str, *, context: Mapping[str, str] | None = None
    ) -> Flow[PaymentQueryResult]:
        """Query a payment by the shop's ``out_trade_no`` (``context`` is ignored)."""
        _order_no(out_trade_no)
        path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.config.mch_id}"
        response = yield from self._call("GET", path)
        result = self._query_result(_json_object(response.content, "query answer"))
        if result.out_trade_no != out_trade_no:
            raise ProtocolError("wechat: the query answer names another out_trade_no")
        return result

    def query_by_transaction_id(self, transaction_id: str) -> Flow[PaymentQueryResult]:
        """Query a payment by WeChat Pay's ``transaction_id``."""
        if TRANSACTION_ID.fullmatch(transaction_id) is None:
            raise InvalidRequestError(f"wechat: malformed transaction_id {shown(transaction_id)}")
        path = f"/v3/pay/transactions/id/{transaction_id}?mchid={self.config.mch_id}"
        response = yield from self._call("GET", path)
        result = self._query_result(_json_object(response.content, "query answer"))
        if result.channel_trade_id != transaction_id:
            raise ProtocolError("wechat: the query answer names another transaction_id")
        return result

    def _query_result(self, data: dict[str, Any]) -> PaymentQueryResult:
        self._check_ours(data, "query answer", ProtocolError)
        state = _str(data, "trade_state", "query answer")
        status = _TRADE_STATES.get(state)
        if status is None:
            raise ProtocolError(f"wechat: unknown trade_state {shown(state)}")
        amount_data = data.get("amount")
        amount = None
        if isinstance(amount_data, dict) and "total" in amount_data:
            amount = _fen(amount_data, "total", _currency(amount_data), least=1)
        payer = data.get("payer")
        what = "query answer"
        return self._model(PaymentQueryResult, {
            "channel": self.name,
            "out_trade_no": checked_id(data, "out_trade_no", OUT_TRADE_NO, what, ProtocolError),
            "status": status,
            "amount": amount,
            "channel_trade_id": optional_id(
                data, "transaction_id", TRANSACTION_ID, what, ProtocolError
            ),
            "paid_at": _time(data.get("success_time"), "success_time"),
            "buyer_id": (
                optional_id(payer, "openid", OPENID, what, ProtocolError)
                if isinstance(payer, dict) else None
            ),
            "raw": data,
        })

    def close(self, out_trade_no: str) -> Flow[None]:
        """Close an unpaid payment (WeChat Pay answers 204, signed)."""
        _order_no(out_trade_no)
        path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
        yield from self._call("POST", path, {"mchid": self.config.mch_id})

    # -- refunds ------------------------------------------------------------

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        """Refund part or all of a payment; WeChat Pay needs the payment's ``total``."""
        total = request.total
        if total is None:
            raise InvalidRequestError("wechat: a refund needs the payment's total")
        if request.amount.currency != total.currency:
            raise CurrencyMismatchError("wechat: refund amount and total differ in currency")
        if total.currency not in self.currencies:
            raise InvalidRequestError(f"wechat: no refunds in {total.currency}")
        if request.amount > total:
            raise InvalidRequestError(
                "wechat: the refund exceeds the payment's total", code=ErrorCode.REFUND_EXCEEDS_PAID
            )
        payload: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "out_refund_no": request.out_refund_no,
            "amount": {
                "refund": request.amount.minor,
                "total": total.minor,
                "currency": total.currency,
            },
        }
        if request.reason:
            payload["reason"] = request.reason
        notify_url = request.notify_url or self.config.refund_notify_url
        if notify_url:
            payload["notify_url"] = notify_url
        response = yield from self._call("POST", _REFUNDS_PATH, payload)
        return self._refund_result(
            _json_object(response.content, "refund answer"), request.out_trade_no,
            request.out_refund_no,
        )

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        """Query a refund by ``out_refund_no``; an unknown one is ``RefundStatus.NOT_FOUND``."""
        path = f"{_REFUNDS_PATH}/{_order_no(request.out_refund_no, 'out_refund_no')}"
        try:
            response = yield from self._call("GET", path)
        except ChannelError as exc:
            if exc.http_status == 404 and exc.channel_code in (
                "RESOURCE_NOT_EXISTS",
                "ORDER_NOT_EXIST",
            ):
                return RefundResult(
                    channel=self.name,
                    out_trade_no=request.out_trade_no,
                    out_refund_no=request.out_refund_no,
                    status=RefundStatus.NOT_FOUND,
                )
            raise
        return self._refund_result(
            _json_object(response.content, "refund query answer"), request.out_trade_no,
            request.out_refund_no,
        )

    def _refund_result(
        self, data: dict[str, Any], out_trade_no: str, out_refund_no: str
    ) -> RefundResult:
        if data.get("out_refund_no") != out_refund_no or data.get("out_trade_no") != out_trade_no:
            raise ProtocolError("wechat: the refund answer names another refund or payment")
        state = _str(data, "status", "refund answer")
        status = _REFUND_STATES.get(state)
        if status is None:
            raise ProtocolError(f"wechat: unknown refund status {shown(state)}")
        amount = _obj(data, "amount", "refund answer")
        what = "refund answer"
        return self._model(RefundResult, {
            "channel": self.name,
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "status": status,
            "amount": _fen(amount, "refund", _currency(amount), least=1),
            "channel_trade_id": optional_id(
                data, "transaction_id", TRANSACTION_ID, what, ProtocolError
            ),
            "channel_refund_id": optional_id(data, "refund_id", REFUND_ID, what, ProtocolError),
            "raw": data,
            "succeeded_at": (
                _time(data.get("success_time"), "success_time")
                if status is RefundStatus.SUCCEEDED and data.get("success_time")
                else None
            ),
        })

    # -- profit sharing (分账) and merchant transfers --------------------------

    def _encryption_key(self) -> Flow[PlatformKey]:
        """The newest platform key (downloading certificates first if none is known)."""
        now = self._clock()
        key = self._keys.newest(now)
        if key is None and self._keys.claim_download(now, unknown_serial=True):
            yield from self._download_certificates()
            key = self._keys.newest(self._clock())
        if key is None:
            raise ConfigurationError(
                f"channel {self.name!r}: no platform key or certificate to encrypt names with"
            )
        return key

    @staticmethod
    def _sharing_type(kind: ReceiverKind) -> str:
        found = _SHARING_TYPES.get(kind)
        if found is None:
            raise InvalidRequestError(f"wechat profit sharing takes no {kind.value} receivers")
        return found

    def bind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        """``POST /v3/profitsharing/receivers/add``, once per receiver (WeChat Pay
        takes no request number: ``out_request_no`` is not sent).

        ``name`` (required for a merchant, optional for a person) is encrypted
        with the platform public key (RSA-OAEP) and the request names that
        key in ``Wechatpay-Serial``. ``relation_type`` is required.
        """
        if not receivers:
            raise InvalidRequestError("wechat: bind at least one receiver")
        for receiver in receivers:
            yield from self._add_receiver(receiver)

    def _add_receiver(self, receiver: ReceiverBinding) -> Flow[None]:
        if not receiver.relation_type:
            raise InvalidRequestError("wechat: a profit-sharing receiver needs a relation_type")
        kind = self._sharing_type(receiver.kind)
        if kind == "MERCHANT_ID" and not receiver.name:
            raise InvalidRequestError("wechat: a merchant receiver needs its full name")
        payload: dict[str, Any] = {
            "appid": self.config.app_id,
            "type": kind,
            "account": receiver.account,
            "relation_type": receiver.relation_type,
        }
        serial = None
        if receiver.name:
            key = yield from self._encryption_key()
            payload["name"] = rsa_oaep_encrypt(key.key, receiver.name.encode("utf-8"))
            serial = key.serial
        if receiver.relation_type == "CUSTOM":
            if not receiver.memo:
                raise InvalidRequestError("wechat: relation_type CUSTOM needs a memo")
            payload["custom_relation"] = receiver.memo
        response = yield from self._call(
            "POST", "/v3/profitsharing/receivers/add", payload, serial=serial
        )
        data = _json_object(response.content, "receiver answer")
        if data.get("account") != receiver.account:
            raise ProtocolError("wechat: the receiver answer names another account")

    def unbind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        """``POST /v3/profitsharing/receivers/delete``, once per receiver."""
        if not receivers:
            raise InvalidRequestError("wechat: unbind at least one receiver")
        for receiver in receivers:
            yield from self._delete_receiver(receiver.kind, receiver.account)

    def _delete_receiver(self, kind: ReceiverKind, account: str) -> Flow[None]:
        payload = {"appid": self.config.app_id, "type": self._sharing_type(kind),
                   "account": account}
        response = yield from self._call("POST", "/v3/profitsharing/receivers/delete", payload)
        data = _json_object(response.content, "receiver answer")
        if data.get("account") != account:
            raise ProtocolError("wechat: the receiver answer names another account")

    def split(self, request: SplitRequest) -> Flow[SplitResult]:
        """``POST /v3/profitsharing/orders``: split a payment made with
        ``settle_info.profit_sharing = true``; idempotent by ``out_order_no``.

        Names given on lines are encrypted (RSA-OAEP, ``Wechatpay-Serial``).
        ``finish`` sends ``unfreeze_unsplit = true``: the rest goes to the merchant.
        """
        receivers = []
        serial = None
        key: PlatformKey | None = None
        for line in request.lines:
            if line.amount.currency != "CNY":
                raise InvalidRequestError("wechat: profit sharing is in CNY")
            if line.amount.minor > MAX_MINOR:
                raise AmountError("wechat: a split line exceeds WeChat Pay's amount limit")
            item: dict[str, Any] = {
                "type": self._sharing_type(line.kind),
                "account": line.account,
                "amount": line.amount.minor,
                "description": line.description,
            }
            if line.name:
                if key is None:
                    key = yield from self._encryption_key()
                    serial = key.serial
                item["name"] = rsa_oaep_encrypt(key.key, line.name.encode("utf-8"))
            receivers.append(item)
        payload = {
            "appid": self.config.app_id,
            "transaction_id": request.channel_trade_id,
            "out_order_no": request.out_request_no,
            "receivers": receivers,
            "unfreeze_unsplit": request.finish,
        }
        response = yield from self._call(
            "POST", "/v3/profitsharing/orders", payload, serial=serial
        )
        return self._sharing_result(_json_object(response.content, "profit-sharing answer"),
                                    request.out_request_no)

    def split_query(self, out_request_no: str, channel_trade_id: str) -> Flow[SplitResult]:
        """``GET /v3/profitsharing/orders/{out_order_no}?transaction_id=…``."""
        path = (f"/v3/profitsharing/orders/{_split_no(out_request_no)}"
                f"?transaction_id={_split_no(channel_trade_id, TRANSACTION_ID)}")
        try:
            response = yield from self._call("GET", path)
        except ChannelError as exc:
            if exc.http_status == 404 and exc.channel_code in _NOT_FOUND:
                return SplitResult(channel=self.name, out_request_no=out_request_no,
                                   status=SplitStatus.NOT_FOUND,
                                   channel_trade_id=channel_trade_id)
            raise
        return self._sharing_result(_json_object(response.content, "profit-sharing answer"),
                                    out_request_no)

    def split_finish(self, out_request_no: str, channel_trade_id: str,
                     description: str) -> Flow[SplitResult]:
        """``POST /v3/profitsharing/orders/unfreeze``: end splitting, the rest to the
        merchant (an ``out_order_no`` of its own)."""
        payload = {
            "transaction_id": _split_no(channel_trade_id, TRANSACTION_ID),
            "out_order_no": _split_no(out_request_no),
            "description": description,
        }
        response = yield from self._call("POST", "/v3/profitsharing/orders/unfreeze", payload)
        return self._sharing_result(_json_object(response.content, "unfreeze answer"),
                                    out_request_no)

    def _sharing_result(self, data: dict[str, Any], out_request_no: str) -> SplitResult:
        what = "profit-sharing answer"
        if data.get("out_order_no") != out_request_no:
            raise ProtocolError(f"wechat: the {what} names another out_order_no")
        state = _str(data, "state", what)
        if state not in ("PROCESSING", "FINISHED"):
            raise ProtocolError(f"wechat: unknown profit-sharing state {shown(state)}")
        items = data.get("receivers") or []
        if not isinstance(items, list):
            raise ProtocolError(f"wechat: the {what}'s receivers is not a list")
        lines = []
        for item in items:
            if not isinstance(item, dict):
                raise ProtocolError(f"wechat: a receiver of the {what} is not an object")
            result = _SHARING_RESULTS.get(str(item.get("result")))
            if result is None:
                raise ProtocolError(f"wechat: unknown receiver result {shown(item.get('result'))}")
            lines.append(self._model(SplitLineResult, {
                "kind": str(item.get("type") or ""),
                "account": str(item.get("account") or ""),
                "amount": _fen(item, "amount", "CNY"),
                "status": result,
                "fail_reason": item.get("fail_reason") or None,
                "channel_detail_id": item.get("detail_id") or None,
            }))
        status = _overall(state == "PROCESSING", [line.status for line in lines])
        return self._model(SplitResult, {
            "channel": self.name,
            "out_request_no": out_request_no,
            "status": status,
            "channel_trade_id": optional_id(data, "transaction_id", TRANSACTION_ID, what,
                                            ProtocolError),
            "channel_split_id": data.get("order_id") or None,
            "lines": tuple(lines),
            "raw": data,
        })

    def share_return(self, request: SplitReturnRequest) -> Flow[SplitReturnResult]:
        """``POST /v3/profitsharing/return-orders`` (回退): take part of a split back
        from a merchant receiver; idempotent by ``out_return_no``."""
        if request.amount.currency != "CNY":
            raise InvalidRequestError("wechat: profit-sharing returns are in CNY")
        payload = {
            "out_order_no": request.out_request_no,
            "out_return_no": request.out_return_no,
            "return_mchid": request.return_merchant,
            "amount": request.amount.minor,
            "description": request.description,
        }
        response = yield from self._call("POST", "/v3/profitsharing/return-orders", payload)
        return self._return_result(_json_object(response.content, "return answer"),
                                   request.out_return_no, request.out_request_no)

    def share_return_query(self, out_return_no: str,
                           out_request_no: str) -> Flow[SplitReturnResult]:
        """``GET /v3/profitsharing/return-orders/{out_return_no}?out_order_no=…``."""
        path = (f"/v3/profitsharing/return-orders/{_split_no(out_return_no)}"
                f"?out_order_no={_split_no(out_request_no)}")
        try:
            response = yield from self._call("GET", path)
        except ChannelError as exc:
            if exc.http_status == 404 and exc.channel_code in _NOT_FOUND:
                return SplitReturnResult(channel=self.name, out_return_no=out_return_no,
                                         out_request_no=out_request_no,
                                         status=SplitStatus.NOT_FOUND)
            raise
        return self._return_result(_json_object(response.content, "return answer"),
                                   out_return_no, out_request_no)

    def _return_result(self, data: dict[str, Any], out_return_no: str,
                       out_request_no: str) -> SplitReturnResult:
        if data.get("out_return_no") != out_return_no or data.get("out_order_no") != out_request_no:
            raise ProtocolError("wechat: the return answer names another return or order")
        result = _RETURN_RESULTS.get(_str(data, "result", "return answer"))
        if result is None:
            raise ProtocolError(f"wechat: unknown return result {shown(data.get('result'))}")
        return self._model(SplitReturnResult, {
            "channel": self.name,
            "out_return_no": out_return_no,
            "out_request_no": out_request_no,
            "status": result,
            "amount": _fen(data, "amount", "CNY", least=1),
            "channel_return_id": data.get("return_id") or None,
            "fail_reason": data.get("fail_reason") or None,
            "raw": data,
        })

    def transfer(self, request: TransferRequest) -> Flow[TransferResult]:
        """``POST /v3/fund-app/mch-transfer/transfer-bills``: the merchant transfer
        to a user's balance (商家转账, the API new merchants get since 2025-01-15).

        Idempotent by ``out_bill_no``. The answer's ``state`` is usually
        ``WAIT_USER_CONFIRM``: hand ``package_info`` to the user's confirm page;
        the outcome comes by notification or :meth:`transfer_query`.
        ``user_name`` (required from 2,000 CNY) is encrypted (RSA-OAEP).
        """
        if request.kind is not ReceiverKind.OPENID:
            raise InvalidRequestError("wechat: a transfer goes to an openid")
        if not _BILL_NO.fullmatch(request.out_transfer_no):
            raise InvalidRequestError(
                "wechat: a transfer's out_bill_no is 5-32 ASCII letters and digits"
            )
        if request.amount.currency != "CNY":
            raise InvalidRequestError("wechat: transfers are in CNY")
        if request.amount.minor > MAX_MINOR:
            raise AmountError("wechat: the transfer exceeds WeChat Pay's amount limit")
        if not request.scene_id:
            raise InvalidRequestError("wechat: a transfer needs its transfer_scene_id")
        if request.amount.minor >= _NAME_REQUIRED_FROM and not request.name:
            raise InvalidRequestError("wechat: a transfer of 2,000 CNY or more needs user_name")
        payload: dict[str, Any] = {
            "appid": self.config.app_id,
            "out_bill_no": request.out_transfer_no,
            "transfer_scene_id": request.scene_id,
            "openid": request.account,
            "transfer_amount": request.amount.minor,
            "transfer_remark": request.remark,
        }
        serial = None
        if request.name:
            key = yield from self._encryption_key()
            payload["user_name"] = rsa_oaep_encrypt(key.key, request.name.encode("utf-8"))
            serial = key.serial
        if request.notify_url:
            payload["notify_url"] = request.notify_url
        if request.perception:
            payload["user_recv_perception"] = request.perception
        if request.scene_report:
            payload["transfer_scene_report_infos"] = [
                {"info_type": kind, "info_content": content}
                for kind, content in request.scene_report
            ]
        response = yield from self._call("POST", _TRANSFER_BILLS_PATH, payload, serial=serial)
        return self._transfer_result(_json_object(response.content, "transfer answer"),
                                     request.out_transfer_no, request.amount)

    def transfer_query(self, out_transfer_no: str) -> Flow[TransferResult]:
        """``GET /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}``."""
        path = f"{_TRANSFER_BILLS_PATH}/out-bill-no/{_split_no(out_transfer_no)}"
        try:
            response = yield from self._call("GET", path)
        except ChannelError as exc:
            if exc.http_status == 404 and exc.channel_code in _NOT_FOUND:
                return TransferResult(channel=self.name, out_transfer_no=out_transfer_no,
                                      status=TransferStatus.NOT_FOUND)
            raise
        return self._transfer_result(_json_object(response.content, "transfer answer"),
                                     out_transfer_no, None)

    def _transfer_result(self, data: dict[str, Any], out_transfer_no: str,
                         sent: Money | None) -> TransferResult:
        if data.get("out_bill_no") != out_transfer_no:
            raise ProtocolError("wechat: the transfer answer names another out_bill_no")
        state = _str(data, "state", "transfer answer")
        status = _TRANSFER_STATES.get(state)
        if status is None:
            raise ProtocolError(f"wechat: unknown transfer state {shown(state)}")
        amount = (_fen(data, "transfer_amount", "CNY", least=1)
                  if "transfer_amount" in data else sent)
        return self._model(TransferResult, {
            "channel": self.name,
            "out_transfer_no": out_transfer_no,
            "status": status,
            "amount": amount,
            "channel_transfer_id": data.get("transfer_bill_no") or None,
            "package_info": data.get("package_info") or None,
            "fail_reason": data.get("fail_reason") or None,
            "raw": data,
        })

    # -- bills --------------------------------------------------------------

    def download_bill(self, bill_date: date) -> Flow[list[BillRecord]]:
        """The day's trade bill (``bill_type=ALL``): payments positive, refunds negative."""
        query = f"bill_date={bill_date.isoformat()}&bill_type=ALL&tar_type=GZIP"
        try:
            response = yield from self._call("GET", f"/v3/bill/tradebill?{query}")
        except ChannelError as exc:
            if exc.channel_code == "NO_STATEMENT_EXIST":
                return []  # a day without trades has no bill: an empty one, not an error
            raise
        data = _json_object(response.content, "bill answer")
        url = self._download_url(_str(data, "download_url", "bill answer"))
        # The file itself is not signed: its SHA1 sits in the signed answer above.
        download = yield self._request("GET", url)
        if not download.is_success:
            raise error_from_response(download)
        encoding = download.headers.get("Content-Encoding", "")
        content = gunzip_bill(download.content, already_decoded="gzip" in encoding.lower())
        verify_bill_hash(content, data.get("hash_type"), data.get("hash_value"))
        return parse_trade_bill(
            content, channel=self.name, bill_date=bill_date, max_minor=MAX_MINOR
        )

    def stream_bill(self, bill_date: date) -> Flow[BillStream]:
        """The day's trade bill as a :class:`BillStream`: the gzip download kept
        in a temporary file, its SHA1 checked, its rows read one at a time and
        held to the bill's summary row."""
        query = f"bill_date={bill_date.isoformat()}&bill_type=ALL&tar_type=GZIP"
        try:
            response = yield from self._call("GET", f"/v3/bill/tradebill?{query}")
        except ChannelError as exc:
            if exc.channel_code == "NO_STATEMENT_EXIST":
                return BillStream.of((), channel=self.name, bill_date=bill_date)
            raise
        data = _json_object(response.content, "bill answer")
        url = self._download_url(_str(data, "download_url", "bill answer"))
        download = yield self._request("GET", url)
        if not download.is_success:
            raise error_from_response(download)
        name = self.name

        def read(file: IO[bytes]) -> Iterator[BillLine]:
            return iter_trade_bill(file, max_minor=MAX_MINOR)

        stream = BillStream.spool(download.content, read, channel=name, bill_date=bill_date)
        try:
            # The file itself is not signed: its SHA1 sits in the signed answer above.
            verify_bill_file_hash(stream.file, data.get("hash_type"), data.get("hash_value"))
        except BaseException:
            stream.close()
            raise
        return stream

    def stream_fundflow_bill(self, bill_date: date) -> Flow[FundFlowStream | None]:
        """The day's fund-flow bill of the basic account (``GET
        /v3/bill/fundflowbill?account_type=BASIC``): what came in for each
        payment (less the fee) and went out for each refund, the gzip download
        kept in a temporary file, its SHA1 checked, held to its summary."""
        query = f"bill_date={bill_date.isoformat()}&account_type=BASIC&tar_type=GZIP"
        try:
            response = yield from self._call("GET", f"/v3/bill/fundflowbill?{query}")
        except ChannelError as exc:
            if exc.channel_code == "NO_STATEMENT_EXIST":
                return FundFlowStream.of((), channel=self.name, bill_date=bill_date)
            raise
        data = _json_object(response.content, "fund-flow bill answer")
        url = self._download_url(_str(data, "download_url", "fund-flow bill answer"))
        download = yield self._request("GET", url)
        if not download.is_success:
            raise error_from_response(download)

        def read(file: IO[bytes]) -> Iterator[FundFlowLine]:
            return iter_fundflow_bill(file, max_minor=MAX_MINOR)

        stream = FundFlowStream.spool(
            download.content, read, channel=self.name, bill_date=bill_date
        )
        try:
            verify_bill_file_hash(stream.file, data.get("hash_type"), data.get("hash_value"))
        except BaseException:
            stream.close()
            raise
        return stream

    def _download_url(self, text: str) -> httpx.URL:
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL:
            raise ProtocolError("wechat: malformed bill download_url") from None
        base = self._base_url
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            # A signed request goes only to the configured host.
            raise ProtocolError("wechat: the bill download_url is not on the API host")
        return url

    # -- notifications ------------------------------------------------------

    def notification_prerequisite(self, headers: httpx.Headers) -> Flow[None] | None:
        """In certificate mode, a download of the platform certificates when the
        notification names an unknown serial (throttled: at most once per interval)."""
        if self._keys.static:
            return None
        now = self._clock()
        try:
            signed = read_signed_headers(headers, now)
        except SignatureError:
            return None  # parse_notification rejects it; nothing to download for
        if self._keys.lookup(signed[3], now) is not None:
            return None
        if not self._keys.claim_download(now, unknown_serial=True):
            return None
        return self._download_certificates()

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        """Verify over the raw body, decrypt the resource, check it is ours, parse."""
        now = self._clock()
        signed = read_signed_headers(headers, now)
        key = self._keys.lookup(signed[3], now)
        if key is None:
            raise SignatureError(f"wechat: unknown platform serial {shown(signed[3])}")
        verify_signed(key, signed, body)
        envelope = _json_object(body, "notification")
        event_type = envelope.get("event_type")
        if event_type == "TRANSACTION.SUCCESS":
            kind = NotificationKind.PAYMENT
        else:
            found = _REFUND_EVENTS.get(event_type) if isinstance(event_type, str) else None
            if found is None:
                raise NotificationRejected(f"wechat: unsupported event_type {shown(event_type)}")
            kind = found
        notification_id = checked_id(
            envelope, "id", NOTIFICATION_ID, "notification", ProtocolError
        )
        data = _json_object(
            self._decrypt(envelope.get("resource"), "notification"), "notification resource"
        )
        config = self.config
        mchid = config.mch_id
        if data.get("mchid") != mchid or data.get("appid", config.app_id) != config.app_id:
            self._check_ours(data, "notification", NotificationRejected)  # raises, saying why
        # raw: the envelope as received, its resource replaced by the plaintext.
        envelope["resource"] = data
        amount = data.get("amount")
        if not isinstance(amount, dict):
            raise ProtocolError("wechat: notification resource has no amount object")
        what = "notification resource"
        currency = _currency(amount)
        out_trade_no = checked_id(data, "out_trade_no", OUT_TRADE_NO, what, ProtocolError)
        # Never zero: WeChat Pay takes no order for less than one fen.
        total = _fen(amount, "total", currency, least=1)
        if "payer_total" in amount:
            # What the buyer paid after coupons: checked, not used.
            _not_above(_fen(amount, "payer_total", currency), total, "payer_total", "total")
        refund_amount = out_refund_no = None
        if kind is NotificationKind.PAYMENT:
            if data.get("trade_state") != "SUCCESS":
                raise ProtocolError("wechat: TRANSACTION.SUCCESS without trade_state SUCCESS")
            status = PaymentStatus.PAID
            occurred_at = _time(data.get("success_time"), "success_time")
        else:
            succeeded = kind is NotificationKind.REFUND
            status = PaymentStatus.REFUNDED if succeeded else PaymentStatus.PAID
            refund_amount = _fen(amount, "refund", currency, least=1)
            if "payer_refund" in amount:
                _not_above(
                    _fen(amount, "payer_refund", currency), refund_amount, "payer_refund", "refund"
                )
            out_refund_no = checked_id(data, "out_refund_no", OUT_REFUND_NO, what, ProtocolError)
            optional_id(data, "refund_id", REFUND_ID, what, ProtocolError)
            occurred_at = _time(
                data.get("success_time") or envelope.get("create_time"), "refund time"
            )
        # Every value above is checked: built without a second validation.
        return Notification.model_construct(
            channel=self.name,
            kind=kind,
            out_trade_no=out_trade_no,
            channel_trade_id=optional_id(
                data, "transaction_id", TRANSACTION_ID, what, ProtocolError
            ),
            amount=total,
            status=status,
            event_key=f"wechat:{mchid}:{notification_id}",
            refund_amount=refund_amount,
            refunded_total=None,
            out_refund_no=out_refund_no,
            occurred_at=occurred_at,
            merchant_id=mchid,
            after_deadline=False,
            raw=envelope,
            raw_body=body,
        )

    def is_split_notification(self, headers: httpx.Headers, body: bytes) -> bool:
        """A ``PROFITSHARING*`` or ``MCHTRANSFER.*`` event (read, not yet verified)."""
        try:
            envelope = json.loads(body)
        except ValueError:
            return False
        event_type = envelope.get("event_type") if isinstance(envelope, dict) else None
        return isinstance(event_type, str) and event_type.startswith(_SPLIT_EVENTS)

    def parse_split_notification(self, headers: httpx.Headers, body: bytes) -> SplitNotice:
        """Verify over the raw body, decrypt, check it is ours, parse: a profit-sharing
        receiver's notice (``PROFITSHARING``; resource ``out_order_no``,
        ``transaction_id``, ``receiver``) or a transfer bill's final state
        (``MCHTRANSFER.BILL.FINISHED``; resource ``out_bill_no``, ``state``,
        ``transfer_bill_no``, ``transfer_amount``, ``fail_reason``)."""
        now = self._clock()
        signed = read_signed_headers(headers, now)
        key = self._keys.lookup(signed[3], now)
        if key is None:
            raise SignatureError(f"wechat: unknown platform serial {shown(signed[3])}")
        verify_signed(key, signed, body)
        envelope = _json_object(body, "notification")
        event_type = envelope.get("event_type")
        if not isinstance(event_type, str) or not event_type.startswith(_SPLIT_EVENTS):
            raise NotificationRejected(f"wechat: not a split event {shown(event_type)}")
        notification_id = checked_id(
            envelope, "id", NOTIFICATION_ID, "notification", ProtocolError
        )
        data = _json_object(
            self._decrypt(envelope.get("resource"), "notification"), "notification resource"
        )
        mchid = data.get("mchid", data.get("mch_id"))
        if mchid != self.config.mch_id:
            raise NotificationRejected(f"wechat: notification for another merchant {shown(mchid)}")
        event_key = f"wechat:{mchid}:{notification_id}"
        if event_type.startswith("PROFITSHARING"):
            return SplitNotice(
                channel=self.name,
                kind="split",
                number=_split_no(data.get("out_order_no")),
                event_key=event_key,
                channel_trade_id=_split_no(data.get("transaction_id"), TRANSACTION_ID),
            )
        out_bill_no = _split_no(data.get("out_bill_no"))
        return SplitNotice(
            channel=self.name,
            kind="transfer",
            number=out_bill_no,
            event_key=event_key,
            transfer=self._transfer_result(data, out_bill_no, None),
        )

    def _check_ours(
        self, data: Mapping[str, Any], what: str, error: type[PayhubError]
    ) -> str:
        mchid = data.get("mchid")
        if mchid != self.config.mch_id:
            raise error(f"wechat: {what} is for another merchant id {shown(mchid)}")
        appid = data.get("appid")
        if appid is not None and appid != self.config.app_id:
            raise error(f"wechat: {what} is for another app id {shown(appid)}")
        return self.config.mch_id

    def _model(self, model: type[M], fields: dict[str, Any]) -> M:
        """``model.model_validate(fields)``; a failure is the channel's fault."""
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise ProtocolError(f"wechat: unusable answer: {problems}") from None

    def ack(self, ok: bool, message: str = "") -> Ack:
        """204 with no body; or 500 with ``{"code":"FAIL","message":…}`` so WeChat resends."""
        if ok:
            return Ack(status_code=204, body=b"", ok=True)
        failure = {"code": "FAIL", "message": message or "FAIL"}
        body = json.dumps(failure, ensure_ascii=False, separators=(",", ":"))
        return Ack(
            status_code=500, body=body.encode(), content_type="application/json", ok=False
        )
