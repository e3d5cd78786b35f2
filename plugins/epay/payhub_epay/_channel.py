"""The EPay (易支付) channel: 彩虹易支付's classic MD5 API and its many clones.

Built only on payhub's public API. Wire facts and their sources are in
``docs/channels/epay.md``; in short:

- page payment: ``submit.php`` (GET or POST form), answered by the provider's
  cashier; API payment: ``mapi.php`` (POST form), answered with JSON carrying
  ``payurl``, ``qrcode`` or ``urlscheme``;
- query ``api.php?act=order`` (GET, ``pid`` and ``key`` in the query string)
  and refund ``api.php?act=refund`` (POST form, ``pid`` and ``key`` in the
  body): the key travels in the clear, so it is registered with a filter that
  redacts it from httpx's and httpcore's log records;
- notifications: GET (彩虹易支付) or POST form with ``pid, trade_no,
  out_trade_no, type, name, money, trade_status, param, sign, sign_type``,
  MD5-signed; the acknowledgement is a body containing ``success``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

import httpx

from payhub.channels import Channel, Flow
from payhub.errors import (
    AmountError,
    ChannelError,
    ErrorCode,
    InvalidRequestError,
    NotificationRejected,
    ProtocolError,
    SignatureError,
)
from payhub.models import (
    Ack,
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
    ReturnInfo,
)
from payhub.money import Money
from payhub_epay._config import EpayConfig
from payhub_epay._redact import register_secret
from payhub_epay._signing import is_md5_hex, sign_md5, verify_md5

__all__ = ["PARAM_PREFIX", "EpayChannel"]

#: ``param`` is echoed, signed, in the notification: payhub puts the order's
#: amount (fen) and expiry (Unix seconds) there to check them on the way back.
PARAM_PREFIX = "payhub1"
_TRADE_SUCCESS = "TRADE_SUCCESS"
_MAX_NAME_BYTES = 127  # 彩虹易支付 cuts longer names (mb_strcut to 127 bytes)
_MAX_BODY = 64 * 1024
#: The query's ``status``: 0 unpaid, 1 paid, 2 refunded, 3 frozen, 4 pre-authorised.
_QUERY_STATUS = {
    "0": PaymentStatus.PENDING,
    "1": PaymentStatus.PAID,
    "2": PaymentStatus.REFUNDED,
    "3": PaymentStatus.PAID,
}
_API_METHODS = frozenset({PayMethod.QR, PayMethod.H5})
#: Providers print times in China Standard Time (UTC+8, no daylight saving).
_SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EpayChannel(Channel):
    """One EPay merchant account (``pid``) of one provider, for one payment type.

    >>> EpayChannel.from_config("epay", {"pid": "1001", "key": {"$env": "EPAY_KEY"},
    ...     "gateway": "https://pay.example.com/"})  # doctest: +SKIP
    """

    kind = "epay"
    methods = frozenset({PayMethod.PAGE, PayMethod.WAP, PayMethod.QR, PayMethod.H5})

    def __init__(
        self, name: str, config: EpayConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(name)
        self._config = config
        self._now = clock if clock is not None else _utcnow
        register_secret(config.key.get_text())

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name, EpayConfig.validated(name, config))

    @property
    def pid(self) -> str:
        return self._config.pid

    @property
    def gateway(self) -> str:
        return self._config.gateway

    @property
    def late_window(self) -> timedelta:
        return self._config.late_window

    # -- acceptance -----------------------------------------------------------

    def max_amount_minor(self) -> int:
        return self._config.max_amount_minor

    def order_number_problem(self, out_trade_no: str) -> str | None:
        # 彩虹易支付 takes /^[a-zA-Z0-9._\-|]+$/; payhub's own grammar (1-64 of
        # A-Za-z0-9_-) is inside it, so only a number payhub never makes fails.
        if not out_trade_no or any(
            not (c.isascii() and (c.isalnum() or c in "._-|")) for c in out_trade_no
        ):
            return f"{self.name!r} takes order numbers of letters, digits and . _ - | only"
        return None

    def request_problem(self, request: PaymentRequest) -> str | None:
        problem = super().request_problem(request)
        if problem is None and request.method in _API_METHODS and not _buyer_ip(request):
            problem = f"{self.name!r} needs the buyer's IP (BuyerHints.ip) for an API payment"
        return problem

    # -- signing --------------------------------------------------------------

    def _signed(self, fields: Mapping[str, str]) -> dict[str, str]:
        params = {k: v for k, v in fields.items() if v != ""}
        params["sign"] = sign_md5(params, self._config.key.get())
        params["sign_type"] = "MD5"
        return params

    def _url(self, path: str) -> str:
        return self._config.gateway + path

    # -- paying ---------------------------------------------------------------

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        problem = self.request_problem(request)
        if problem is not None:
            raise InvalidRequestError(problem)
        notify_url = request.notify_url or self._config.notify_url
        return_url = request.return_url or self._config.return_url
        if not notify_url:
            raise InvalidRequestError(f"{self.name!r}: no notify_url (request or config)")
        fields = {
            "pid": self.pid,
            "type": self._config.pay_type,
            "out_trade_no": request.out_trade_no,
            "notify_url": notify_url,
            "return_url": return_url or "",
            "name": _name(request.subject),
            "money": request.amount.to_decimal_string(),
            "param": _param(request),
        }
        if request.method in _API_METHODS:
            return (yield from self._pay_api(request, fields))
        if not return_url:
            raise InvalidRequestError(
                f"{self.name!r}: a page payment needs a return_url (submit.php requires one)"
            )
        return (yield from self._pay_page(request, fields))

    def _pay_page(self, request: PaymentRequest, fields: dict[str, str]) -> Flow[PaymentResult]:
        yield from ()
        params = self._signed(fields)
        action = self._url("submit.php")
        inputs = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}"/>'
            for k, v in params.items()
        )
        form = (
            f'<form id="epaysubmit" action="{escape(action)}" method="post">{inputs}'
            '<input type="submit" value="Pay"/></form>'
            '<script>document.getElementById("epaysubmit").submit();</script>'
        )
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.REDIRECT,
            redirect_url=f"{action}?{urlencode(params)}",
            form_html=form,
            raw={},
            channel_context=_context(request),
        )

    def _pay_api(self, request: PaymentRequest, fields: dict[str, str]) -> Flow[PaymentResult]:
        fields = dict(fields)
        fields["clientip"] = _buyer_ip(request) or ""
        fields["device"] = "mobile" if request.method is PayMethod.H5 else "pc"
        response = yield httpx.Request("POST", self._url("mapi.php"), data=self._signed(fields))
        body = self._json(response, "mapi.php")
        if str(body.get("code")) != "1":
            raise self._refused(body, "payment", response)
        trade_no = _text(body.get("trade_no"))
        qr = _text(body.get("qrcode"))
        pay_url = _text(body.get("payurl"))
        scheme = _text(body.get("urlscheme"))
        raw = {k: v for k, v in body.items() if isinstance(v, str | int)}
        common: dict[str, Any] = {
            "channel": self.name,
            "out_trade_no": request.out_trade_no,
            "channel_trade_id": trade_no,
            "raw": raw,
            "channel_context": _context(request),
        }
        if request.method is PayMethod.QR and (qr or pay_url):
            return PaymentResult(kind=ResultKind.QR, qr_code=qr or pay_url, **common)
        if pay_url or scheme or qr:
            return PaymentResult(
                kind=ResultKind.REDIRECT, redirect_url=pay_url or scheme or qr, **common
            )
        raise ProtocolError(f"{self.name}: mapi.php answered no payurl, qrcode or urlscheme")

    # -- query, refund, close -------------------------------------------------

    def query(
        self, out_trade_no: str, *, context: Mapping[str, str] | None = None
    ) -> Flow[PaymentQueryResult]:
        body = yield from self._order(out_trade_no)
        status = _QUERY_STATUS.get(str(body.get("status")))
        if status is None:
            raise ProtocolError(f"{self.name}: order query gave an unknown status")
        if status is PaymentStatus.PENDING and self._past_deadline(context):
            # EPay orders never expire at the provider; past the shop's expiry
            # and the late window, payhub treats the unpaid order as closed so a
            # payment after it becomes a late-payment anomaly, not a credit.
            status = PaymentStatus.CLOSED
        amount = self._money(_text(body.get("money")) or "", "order query")
        return PaymentQueryResult(
            channel=self.name,
            out_trade_no=out_trade_no,
            status=status,
            amount=amount,
            channel_trade_id=_text(body.get("trade_no")),
            paid_at=_shanghai(_text(body.get("endtime"))) if status is PaymentStatus.PAID else None,
            buyer_id=_text(body.get("buyer")),
            raw={k: v for k, v in body.items() if k != "key"},
        )

    def _order(self, out_trade_no: str) -> Flow[dict[str, Any]]:
        # 彩虹易支付 reads act=order's pid and key from $_GET only: the key must
        # be in the URL. The redaction filter keeps it out of httpx's log line.
        params = {
            "act": "order",
            "pid": self.pid,
            "key": self._config.key.get_text(),
            "out_trade_no": out_trade_no,
        }
        response = yield httpx.Request("GET", self._url("api.php"), params=params)
        body = self._json(response, "order query")
        if str(body.get("code")) != "1":
            raise self._refused(body, "order query", response)
        if _text(body.get("out_trade_no")) not in (None, out_trade_no):
            raise ProtocolError(f"{self.name}: the order query answered another order")
        return body

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        if request.amount.currency != "CNY":
            raise InvalidRequestError(f"{self.name!r} refunds only CNY")
        # act=refund reads pid and key from the POST body ($_POST): never the URL.
        data = {
            "pid": self.pid,
            "key": self._config.key.get_text(),
            "out_trade_no": request.out_trade_no,
            "money": request.amount.to_decimal_string(),
        }
        response = yield httpx.Request(
            "POST", self._url("api.php"), params={"act": "refund"}, data=data
        )
        body = self._json(response, "refund")
        # 彩虹易支付 answers code 0 on success (its other APIs use 1); both mean done.
        if str(body.get("code")) not in ("0", "1"):
            raise self._refused(body, "refund", response)
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=RefundStatus.SUCCEEDED,
            amount=request.amount,
            raw={k: v for k, v in body.items() if k != "key"},
        )

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        # EPay has no refund query and no refund number of the shop's: only the
        # order's status says "refunded" (2). Anything else stays unknown.
        body = yield from self._order(request.out_trade_no)
        refunded = str(body.get("status")) == "2"
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=RefundStatus.SUCCEEDED if refunded else RefundStatus.PENDING,
            channel_trade_id=_text(body.get("trade_no")),
            raw={k: v for k, v in body.items() if k != "key"},
        )

    def close(self, out_trade_no: str) -> Flow[None]:
        # The classic API has no close: the order stays payable at the provider.
        # Closing is payhub's decision; a payment after it is a late payment.
        yield from ()

    # -- notifications ----------------------------------------------------------

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        """Verify a notification: the form body of a POST, or the query string of
        a GET (pass ``request.query_string`` as ``body``)."""
        fields = self._verified(body)
        if fields.get("trade_status") != _TRADE_SUCCESS:
            raise NotificationRejected(
                f"{self.name}: trade_status {fields.get('trade_status', '')[:32]!r} "
                f"is not {_TRADE_SUCCESS}",
                code=ErrorCode.PAYMENT_STATE,
            )
        trade_no = fields.get("trade_no", "")
        if not trade_no or len(trade_no) > 64:
            raise ProtocolError(f"{self.name}: notification without a usable trade_no")
        amount = self._money(fields.get("money", ""), "notification")
        late = self._check_param(fields, amount)
        return Notification(
            channel=self.name,
            kind=NotificationKind.PAYMENT,
            out_trade_no=fields["out_trade_no"],
            channel_trade_id=trade_no,
            amount=amount,
            status=PaymentStatus.PAID,
            event_key=f"epay:{self.pid}:{trade_no}",
            merchant_id=self.pid,
            after_deadline=late,
            raw=fields,
            raw_body=bytes(body),
        )

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo:
        fields = self._verified(urlencode(list(params.items())).encode())
        amount = self._money(fields.get("money", ""), "return")
        return ReturnInfo(
            channel=self.name,
            out_trade_no=fields["out_trade_no"],
            channel_trade_id=fields.get("trade_no") or None,
            amount=amount,
            raw=fields,
        )

    def ack(self, ok: bool, message: str = "") -> Ack:
        # Providers look for "success" anywhere in the body; anything else is resent.
        return Ack(
            status_code=200, body=b"success" if ok else b"fail", content_type="text/plain", ok=ok
        )

    def _verified(self, body: bytes) -> dict[str, str]:
        """Signature first, then whose it is: nothing unsigned is looked at further."""
        if len(body) > _MAX_BODY:
            raise ProtocolError(f"{self.name}: notification too large", retryable=False)
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except (UnicodeDecodeError, ValueError):
            raise ProtocolError(
                f"{self.name}: notification is not a UTF-8 form", retryable=False
            ) from None
        fields: dict[str, str] = {}
        for key, value in pairs:
            if key in fields:
                raise SignatureError(f"{self.name}: notification repeats the field {key[:32]!r}")
            fields[key] = value
        sign = fields.get("sign", "")
        if not sign:
            raise SignatureError(f"{self.name}: notification is not signed")
        sign_type = fields.get("sign_type", "MD5")
        if sign_type.upper() != "MD5":
            raise SignatureError(
                f"{self.name}: sign_type {sign_type[:16]!r} is not MD5, the configured type"
            )
        if not is_md5_hex(sign) or not verify_md5(fields, sign, self._config.key.get()):
            raise SignatureError(f"{self.name}: notification signature does not verify")
        if fields.get("pid") != self.pid:
            raise NotificationRejected(
                f"{self.name}: notification for merchant {fields.get('pid', '')[:20]!r}, "
                f"not {self.pid!r}"
            )
        if not fields.get("out_trade_no"):
            raise ProtocolError(f"{self.name}: notification without out_trade_no")
        return fields

    def _check_param(self, fields: Mapping[str, str], amount: Money) -> bool:
        """The order's amount and expiry, as payhub signed them into ``param``.

        True if the notification came after the order's expiry plus the
        late-callback window: the payment is then recorded as a late payment
        (``Notification.after_deadline``), not credited, and acknowledged, so
        that it is neither lost nor resent forever."""
        parts = fields.get("param", "").split(":")
        if parts[0] != PARAM_PREFIX:
            return False  # a provider that drops param: the store still checks the amount
        try:
            ordered = int(parts[1])
            expires = int(parts[2]) if len(parts) > 2 and parts[2] else None
        except (IndexError, ValueError):
            raise ProtocolError(f"{self.name}: malformed payhub param") from None
        if ordered != amount.minor:
            raise NotificationRejected(
                f"{self.name}: paid {amount} for an order of {Money(ordered)}",
                code=ErrorCode.INVALID_AMOUNT,
            )
        if expires is None:
            return False
        try:
            deadline = datetime.fromtimestamp(expires, UTC) + self._config.late_window
        except (ValueError, OverflowError, OSError):
            raise ProtocolError(f"{self.name}: malformed payhub param") from None
        return self._now() > deadline

    def _past_deadline(self, context: Mapping[str, str] | None) -> bool:
        expires = (context or {}).get("expires_at")
        if not expires:
            return False
        try:
            deadline = datetime.fromtimestamp(int(expires), UTC) + self._config.late_window
        except (ValueError, OverflowError, OSError):
            return False
        return self._now() > deadline

    # -- answers --------------------------------------------------------------

    def _money(self, text: str, what: str) -> Money:
        try:
            return Money.parse(text, "CNY", max_minor=self.max_amount_minor())
        except AmountError as exc:
            raise ProtocolError(f"{self.name}: {what}: {exc.message}", retryable=False) from None

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code >= 500:
            raise ChannelError(
                f"{self.name}: {what}: HTTP {response.status_code}",
                channel=self.name,
                code=ErrorCode.CHANNEL_UNAVAILABLE,
                http_status=response.status_code,
            )
        try:
            # Some providers prefix a UTF-8 BOM or whitespace.
            body = json.loads(response.content.decode("utf-8-sig").strip())
        except (UnicodeDecodeError, ValueError):
            raise ProtocolError(f"{self.name}: {what}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise ProtocolError(f"{self.name}: {what}: the answer is not a JSON object")
        return body

    def _refused(
        self, body: Mapping[str, Any], what: str, response: httpx.Response
    ) -> ChannelError:
        code = str(body.get("code"))
        message = _text(body.get("msg")) or ""
        unified = ErrorCode.CHANNEL_ERROR
        if code == "-1" and what in ("order query", "refund") and "不存在" in message:
            unified = ErrorCode.TRADE_NOT_FOUND
        elif code == "-3":
            unified = ErrorCode.PERMISSION_DENIED
        return ChannelError(
            f"{self.name}: {what} refused ({code}): {message[:200]}",
            channel=self.name,
            channel_code=code,
            channel_message=message[:200],
            code=unified,
            http_status=response.status_code,
        )


def _buyer_ip(request: PaymentRequest) -> str | None:
    return request.buyer.ip if request.buyer is not None and request.buyer.ip else None


def _name(subject: str) -> str:
    data = subject.encode("utf-8")
    if len(data) <= _MAX_NAME_BYTES:
        return subject
    return data[:_MAX_NAME_BYTES].decode("utf-8", "ignore")


def _param(request: PaymentRequest) -> str:
    # Deterministic for one request: a provider refuses a second submit of the
    # same out_trade_no whose parameters changed.
    expires = "" if request.expires_at is None else str(int(request.expires_at.timestamp()))
    return f"{PARAM_PREFIX}:{request.amount.minor}:{expires}"


def _context(request: PaymentRequest) -> dict[str, str]:
    if request.expires_at is None:
        return {}
    return {"expires_at": str(int(request.expires_at.timestamp()))}


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _shanghai(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        naive = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return naive.replace(tzinfo=_SHANGHAI)
