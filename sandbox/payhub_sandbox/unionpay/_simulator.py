"""UnionPay's side of the sandbox: ACP 5.1.0 (``signMethod=01``) on the online gateway.

:class:`UnionPaySimulator` holds no Flask: the views hand it the raw request
body of ``/gateway/api/<endpoint>.do`` and send back the :class:`UnionPayReply`
it returns. The wire format is built here and in
:mod:`payhub_sandbox.unionpay._wire` from PROTOCOLS.md, never through
``payhub.channels``.

Transactions are identified as ACP does: by ``merId`` + ``orderId`` (+ the
original ``txnTime`` for a query). A consume is a :class:`~payhub_sandbox.Trade`
whose ``trade_no`` is its ``queryId``; a refund (``04``) or an undo (``31``) has
its own ``orderId`` and ``queryId`` and is a :class:`~payhub_sandbox.Refund`
of the consume named by ``origQryId``.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payhub.errors import ConfigurationError
from payhub.money import Money
from payhub.signing import load_certificate
from payhub_sandbox._clock import CHINA_TZ, Clock
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeNotFoundError,
    TradeStateError,
    UnknownMerchantError,
)
from payhub_sandbox._state import Refund, Trade, TradeState, TradeStore
from payhub_sandbox.delivery._scheduler import DeliveryScheduler, OutboundNotification, scaled
from payhub_sandbox.unionpay._pki import (
    PlatformSigner,
    UnionPayPKI,
    certificate_pem,
    merchant_pfx,
    new_rsa_key,
)
from payhub_sandbox.unionpay._wire import (
    SIGN_METHOD,
    VERSION,
    amount_text,
    encode_form,
    parse_form,
    parse_txn_amt,
    parse_txn_time,
    render_body,
    settle_date,
    sign_fields,
    signature_verifies,
)

__all__ = [
    "ENDPOINTS",
    "RESP_MESSAGES",
    "UNIONPAY_RETRY_DELAYS",
    "UnionPayMerchant",
    "UnionPayReply",
    "UnionPaySimulator",
    "unionpay_orig_resp_code",
]

CHANNEL: Final = "unionpay"

#: Seconds between notification attempts: 1m, 2m, 4m, 8m, 16m after the first
#: (6 attempts in all). UnionPay documents "a few resends with growing
#: intervals" without the schedule: this one is the sandbox's assumption.
UNIONPAY_RETRY_DELAYS: Final = (60.0, 120.0, 240.0, 480.0, 960.0)

#: ``/gateway/api/<name>`` → the endpoint's role.
ENDPOINTS: Final[Mapping[str, str]] = {
    "frontTransReq.do": "front",
    "appTransReq.do": "app",
    "backTransReq.do": "back",
    "queryTrans.do": "query",
}

SUCCESS: Final = "00"
#: ``respMsg`` of each ``respCode`` the sandbox answers (ACP's wording).
RESP_MESSAGES: Final[Mapping[str, str]] = {
    "00": "成功[0000000]",
    "01": "交易失败。详情请咨询95516",
    "02": "系统未开放或暂时关闭，请稍后再试",
    "03": "交易通讯超时，请发起查询交易",
    "04": "交易状态未明，请查询对账结果",
    "05": "交易已受理，请稍后查询交易结果",
    "06": "系统繁忙，请稍后再试",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "31": "商户状态不正确",
    "32": "无此交易权限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "36": "与原交易信息不符",
    "39": "交易不在受理时间范围内",
}
#: ``respMsg`` of a successful back notification, as UnionPay writes it.
_NOTIFY_MSG: Final = "Success!"
#: ``respMsg`` of the front (browser) notification of UnionPay's test environment.
_FRONT_MSG: Final = "success"

_MER_ID_RE: Final = re.compile(r"[0-9A-Za-z]{1,32}", re.ASCII)
_ORDER_ID_RE: Final = re.compile(r"[0-9A-Za-z]{8,40}", re.ASCII)
_URL_RE: Final = re.compile(r"https?://[^\s]+", re.ASCII)
_QUERY_ID_RE: Final = re.compile(r"[0-9A-Za-z]{1,64}", re.ASCII)
_ECHO_SAFE_RE: Final = re.compile(r"[0-9A-Za-z._:\-]{1,64}", re.ASCII)
#: Request fields every answer repeats (when the request had a sane value).
_ECHOED: Final = (
    "bizType",
    "txnTime",
    "txnType",
    "txnSubType",
    "accessType",
    "merId",
    "orderId",
)
_MASKED_CARD: Final = "6216***********0018"

Endpoint = Literal["front", "app", "back", "query"]
_Kind = Literal["consume", "refund", "undo"]

#: (txnType, txnSubType, bizType) each endpoint serves.
_SERVED: Final[Mapping[str, frozenset[tuple[str, str, str]]]] = {
    "front": frozenset({("01", "01", "000201")}),
    "app": frozenset({("01", "01", "000201")}),
    # bizType 000000 too: what widely used clients send for refunds and undos, and
    # what UnionPay's test gateway accepted.
    "back": frozenset(
        {
            ("04", "00", "000201"),
            ("31", "00", "000201"),
            ("04", "00", "000000"),
            ("31", "00", "000000"),
        }
    ),
    "query": frozenset({("00", "00", "000000")}),
}
_PRODUCTS: Final[Mapping[str, str]] = {"front": "frontTransReq", "app": "appTransReq"}


def unionpay_orig_resp_code(trade: Trade) -> str:
    """What a query answers as ``origRespCode`` for a consume.

    ``05`` (accepted, result not yet known) while the buyer has not paid,
    ``01`` (failed) once its ``payTimeout`` closed it unpaid, ``00`` once paid
    (refunds and undos are transactions of their own and leave it ``00``).
    """
    if trade.paid_at is not None:
        return SUCCESS
    if trade.state is TradeState.CLOSED:
        return "01"
    return "05"


# -- merchants ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnionPayMerchant:
    """A registered ``merId`` and its signing certificates, by ``certId``.

    A merchant may hold several certificates (a rotation in progress); a
    request verifies with the one its ``certId`` names.
    """

    mer_id: str
    certificates: Mapping[str, x509.Certificate] = field(repr=False, compare=False)

    @property
    def cert_ids(self) -> list[str]:
        return list(self.certificates)

    def to_json(self) -> dict[str, Any]:
        return {
            "mer_id": self.mer_id,
            "cert_ids": self.cert_ids,
            "certificates": [certificate_pem(c) for c in self.certificates.values()],
        }


# -- gateway answers ----------------------------------------------------------------


@dataclass(frozen=True)
class UnionPayReply:
    """What an ACP endpoint answers: a signed ``k=v&…`` body, the cashier page for a
    browser consume, or an error page for a browser consume."""

    kind: Literal["body", "cashier", "page_error"]
    body: bytes = b""
    fields: Mapping[str, str] = field(default_factory=dict)
    trade: Trade | None = None


class AcpFailure(Exception):
    """An error answer of the gateway (never escapes :class:`UnionPaySimulator`)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = RESP_MESSAGES[code] + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class _Txn:
    """One transaction as a query finds it: by ``merId`` + ``orderId``."""

    kind: _Kind
    txn_time: str
    trade_no: str
    """The consume's ``queryId`` (for a refund or an undo: the one it refunds)."""
    query_id: str
    wire: Mapping[str, str] = field(default_factory=dict)
    """A refund's or an undo's fields, as its query and its notification show them."""


# -- the channel ---------------------------------------------------------------------


class UnionPaySimulator:
    """UnionPay's state and behaviour; every public method is thread-safe."""

    def __init__(
        self,
        *,
        store: TradeStore,
        scheduler: DeliveryScheduler,
        clock: Clock,
        time_factor: float,
        pki: UnionPayPKI | None = None,
    ) -> None:
        self._store = store
        self._lock: threading.RLock = store.lock
        self._scheduler = scheduler
        self._clock = clock
        self._time_factor = time_factor
        self._pki = pki
        self._merchants: dict[str, UnionPayMerchant] = {}
        self._txns: dict[tuple[str, str], _Txn] = {}
        self._fault: str | None = None
        self._prefix = f"{secrets.randbelow(1000):03d}"
        self._serial = 0

    # -- the PKI ------------------------------------------------------------------------

    @property
    def pki(self) -> UnionPayPKI:
        """The PKI; generated on first use (three RSA keys) unless one was given."""
        with self._lock:
            if self._pki is None:
                self._pki = UnionPayPKI.generate(now=self._clock.now())
            return self._pki

    @property
    def root_cert_pem(self) -> str:
        return self.pki.root_cert_pem

    @property
    def middle_cert_pem(self) -> str:
        return self.pki.middle_cert_pem

    @property
    def fault(self) -> str | None:
        with self._lock:
            return self._fault

    def set_fault(self, kind: str | None) -> str | None:
        """Sign from now on with a faulty certificate (see ``FAULT_KINDS``); None: the good one."""
        if kind is not None:
            self.pki.fault_signer(kind)  # validates the kind, and makes the signer now
        with self._lock:
            self._fault = kind
        return kind

    def _signer(self) -> PlatformSigner:
        pki = self.pki
        with self._lock:
            fault = self._fault
        if fault is None:
            return pki.platform
        return pki.fault_signer(fault)

    def _signed_body(self, fields: Mapping[str, str]) -> bytes:
        return render_body(sign_fields(fields, self._signer()))

    # -- merchants ------------------------------------------------------------------------

    def add_merchant(
        self, mer_id: str, certificate: x509.Certificate | str | bytes
    ) -> UnionPayMerchant:
        """Register a merchant's signing certificate (PEM, DER or loaded); ``certId``
        is its serial number in decimal. Certificates already registered stay."""
        _check_mer_id(mer_id)
        if not isinstance(certificate, x509.Certificate):
            try:
                certificate = load_certificate(certificate)
            except (ConfigurationError, UnicodeEncodeError) as exc:
                raise InvalidInputError(f"certificate: {exc}") from None
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise InvalidInputError("certificate: needs an RSA key (signMethod 01)")
        with self._lock:
            earlier = self._merchants.get(mer_id)
            certs = dict(earlier.certificates) if earlier is not None else {}
            certs[str(certificate.serial_number)] = certificate
            merchant = UnionPayMerchant(mer_id, certs)
            self._merchants[mer_id] = merchant
        return merchant

    def issue_merchant(
        self, mer_id: str, password: str, *, key: rsa.RSAPrivateKey | None = None
    ) -> tuple[bytes, x509.Certificate]:
        """Issue a merchant signing certificate from the middle CA, register it, and
        return it with its PKCS#12 file (key + certificate, ``password``-protected)."""
        _check_mer_id(mer_id)
        if not isinstance(password, str):
            raise InvalidInputError("password must be a string")
        private = key if key is not None else new_rsa_key()
        with self._lock:
            taken = frozenset(
                int(cert_id) for m in self._merchants.values() for cert_id in m.certificates
            )
        cert = self.pki.issue_merchant_cert(
            mer_id, private.public_key(), now=self._clock.now(), taken=taken
        )
        pfx = merchant_pfx(private, cert, password, name=f"{mer_id} sign")
        self.add_merchant(mer_id, cert)
        return pfx, cert

    def merchant(self, mer_id: str) -> UnionPayMerchant:
        with self._lock:
            try:
                return self._merchants[mer_id]
            except KeyError:
                raise UnknownMerchantError(
                    f"no UnionPay merchant {mer_id!r} is registered"
                ) from None

    def merchants(self) -> list[UnionPayMerchant]:
        with self._lock:
            return list(self._merchants.values())

    # -- the gateway ------------------------------------------------------------------

    def handle(self, endpoint: str, raw: bytes) -> UnionPayReply:
        """Answer one request to an ACP endpoint (``front``, ``app``, ``back``, ``query``)."""
        if endpoint not in _SERVED:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        self.close_expired()
        parsed = parse_form(raw)
        fields: dict[str, str] = parsed if parsed is not None else {}
        try:
            if parsed is None:
                raise AcpFailure("10", "请求须为UTF-8编码的表单")
            merchant = self._verify(fields)
            self._check_fields(endpoint, fields)
            with self._lock:
                return self._dispatch(endpoint, fields, merchant)
        except AcpFailure as failure:
            answer = _echo(fields) | {"respCode": failure.code, "respMsg": failure.message}
            if endpoint == "front":
                return UnionPayReply(kind="page_error", fields=answer)
            return UnionPayReply(kind="body", body=self._signed_body(answer))

    def system_error(self, code: str, fields: Mapping[str, str]) -> dict[str, str]:
        """The answer of a gateway that failed before handling a request (a gateway
        fault): ``respCode`` ``code`` (``03``, ``01``, …) with the request's
        identification fields, unsigned; see :meth:`signed_body`."""
        message = RESP_MESSAGES.get(code, RESP_MESSAGES["06"])
        return _echo(fields) | {"respCode": code, "respMsg": message}

    def signed_body(self, fields: Mapping[str, str], *, first: tuple[str, ...] = ()) -> bytes:
        """``fields`` as a synchronous answer, signed by the platform (or the fault in
        force); the ``first`` names lead the body."""
        return render_body(sign_fields(fields, self._signer()), first=first)

    def _verify(self, fields: Mapping[str, str]) -> UnionPayMerchant:
        """The common checks, then the signature, in this order."""
        version = fields.get("version", "")
        if not version:
            raise AcpFailure("13", "version")
        if version != VERSION:
            raise AcpFailure("10", f"version须为{VERSION}")
        encoding = fields.get("encoding", "")
        if not encoding:
            raise AcpFailure("13", "encoding")
        if encoding.upper() != "UTF-8":
            raise AcpFailure("10", "encoding须为UTF-8")
        sign_method = fields.get("signMethod", "")
        if not sign_method:
            raise AcpFailure("13", "signMethod")
        if sign_method != SIGN_METHOD:
            raise AcpFailure("10", "signMethod须为01")
        for name in ("merId", "certId", "signature"):
            if not fields.get(name):
                raise AcpFailure("13", name)
        with self._lock:
            merchant = self._merchants.get(fields["merId"])
        if merchant is None:
            raise AcpFailure("31", "merId未注册")
        cert = merchant.certificates.get(fields["certId"])
        if cert is None:
            raise AcpFailure("11", "certId不是该商户的签名证书")
        now = self._clock.now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise AcpFailure("11", "签名证书不在有效期内")
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked when registered
        if not signature_verifies(fields, key):
            raise AcpFailure("11")
        return merchant

    def _check_fields(self, endpoint: str, fields: Mapping[str, str]) -> None:
        """What the transaction is first (13, 10, then 32), then its own fields (13, 10)."""
        for name, pattern in (
            ("txnType", r"[0-9]{2}"),
            ("txnSubType", r"[0-9]{2}"),
            ("bizType", r"[0-9]{6}"),
            ("accessType", r"[0-9]"),
        ):
            if not fields.get(name):
                raise AcpFailure("13", name)
            if re.fullmatch(pattern, fields[name], re.ASCII) is None:
                raise AcpFailure("10", name)
        kind = (fields["txnType"], fields["txnSubType"], fields["bizType"])
        if kind not in _SERVED[endpoint]:
            raise AcpFailure("32", "txnType/txnSubType/bizType")
        if fields["accessType"] != "0":
            raise AcpFailure("32", "accessType (只模拟商户直连 0)")
        consume = endpoint in ("front", "app")
        required = ["orderId", "txnTime"]
        if endpoint != "query":
            required += ["channelType", "txnAmt", "backUrl"]
        if consume:
            required.append("currencyCode")
        if endpoint == "back":
            required.append("origQryId")
        for name in required:
            if not fields.get(name):
                raise AcpFailure("13", name)
        channel_type = fields.get("channelType", "")
        allowed = {"08"} if endpoint == "app" else {"07", "08"}
        if channel_type and channel_type not in allowed:
            raise AcpFailure("10", "channelType")
        if _ORDER_ID_RE.fullmatch(fields["orderId"]) is None:
            raise AcpFailure("10", "orderId须为8-40位字母或数字")
        if parse_txn_time(fields["txnTime"]) is None:
            raise AcpFailure("10", "txnTime须为yyyyMMddHHmmss")
        if "txnAmt" in required and parse_txn_amt(fields["txnAmt"]) is None:
            raise AcpFailure("10", "txnAmt须为以分为单位的正整数")
        currency = fields.get("currencyCode", "")
        if currency and currency != "156":
            raise AcpFailure("10", "currencyCode须为156")
        for name in ("backUrl", "frontUrl"):
            url = fields.get(name, "")
            if url and _URL_RE.fullmatch(url) is None:
                raise AcpFailure("10", name)
        timeout = fields.get("payTimeout", "")
        if consume and timeout and parse_txn_time(timeout) is None:
            raise AcpFailure("10", "payTimeout须为yyyyMMddHHmmss")
        if endpoint == "back" and _QUERY_ID_RE.fullmatch(fields["origQryId"]) is None:
            raise AcpFailure("10", "origQryId")

    def _dispatch(
        self, endpoint: str, fields: Mapping[str, str], merchant: UnionPayMerchant
    ) -> UnionPayReply:
        if endpoint == "front":
            return UnionPayReply(kind="cashier", trade=self._consume(endpoint, fields, merchant))
        base = _echo(fields) | {"respCode": SUCCESS, "respMsg": RESP_MESSAGES[SUCCESS]}
        if fields.get("reqReserved"):
            base["reqReserved"] = fields["reqReserved"]
        if endpoint == "app":
            trade = self._consume(endpoint, fields, merchant)
            answer = base | {"tn": trade.extra["tn"]}
        elif endpoint == "back":
            answer = base | self._back(fields, merchant)
        else:
            answer = base | self._query(fields, merchant)
        return UnionPayReply(kind="body", body=self._signed_body(answer))

    # -- consume ----------------------------------------------------------------------

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def _new_query_id(self, now: datetime) -> str:
        """21 digits, as UnionPay's ``queryId``."""
        return f"{now.astimezone(CHINA_TZ):%y%m%d%H%M%S}{self._prefix}{self._next() % 10**6:06d}"

    def _new_tn(self, now: datetime) -> str:
        """21 digits, as UnionPay's ``tn``."""
        return f"{now.astimezone(CHINA_TZ):%Y%m%d%H%M%S}{self._prefix}{self._next() % 10**4:04d}"

    def _consume(
        self, endpoint: str, fields: Mapping[str, str], merchant: UnionPayMerchant
    ) -> Trade:
        order_id, txn_time = fields["orderId"], fields["txnTime"]
        amount = parse_txn_amt(fields["txnAmt"])
        assert amount is not None  # checked
        product = _PRODUCTS[endpoint]
        earlier = self._txns.get((merchant.mer_id, order_id))
        if earlier is not None:
            trade = self._store.get(earlier.trade_no)
            if (
                earlier.kind == "consume"
                and trade is not None
                and trade.state is TradeState.PENDING
                and earlier.txn_time == txn_time
                and trade.amount == amount
                and trade.product == product
            ):
                return trade  # the same request again (a reloaded form): the same trade
            raise AcpFailure("12", "orderId已被使用")
        now = self._clock.now()
        extra = {
            name: fields[name]
            for name in ("txnTime", "channelType", "encoding", "reqReserved", "certId")
            if fields.get(name)
        }
        if endpoint == "app":
            extra["tn"] = self._new_tn(now)
        timeout = fields.get("payTimeout", "")
        trade = Trade(
            channel=CHANNEL,
            merchant_id=merchant.mer_id,
            trade_no=self._new_query_id(now),
            out_trade_no=order_id,
            amount=amount,
            subject=fields.get("orderDesc", ""),
            state=TradeState.PENDING,
            created_at=now,
            product=product,
            notify_url=fields["backUrl"],
            return_url=fields.get("frontUrl") or None,
            expires_at=parse_txn_time(timeout) if timeout else None,
            extra=extra,
        )
        self._store.add_trade(trade)
        self._txns[(merchant.mer_id, order_id)] = _Txn(
            "consume", txn_time, trade.trade_no, trade.trade_no
        )
        return trade

    def _consume_wire(self, trade: Trade) -> dict[str, str]:
        """A consume's fields as its notification, its front return and its query show them."""
        extra = trade.extra
        wire = {
            "merId": trade.merchant_id,
            "orderId": trade.out_trade_no,
            "txnTime": extra.get("txnTime", ""),
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "accessType": "0",
            "currencyCode": "156",
            "txnAmt": amount_text(trade.amount),
            "queryId": trade.trade_no,
            "reqReserved": extra.get("reqReserved", ""),
        }
        if trade.paid_at is not None:
            wire |= {
                "traceNo": extra.get("traceNo", ""),
                "traceTime": extra.get("traceTime", ""),
                "settleAmt": amount_text(trade.amount),
                "settleCurrencyCode": "156",
                "settleDate": extra.get("settleDate", ""),
                "accNo": self._encrypted_card(trade),
            }
        return wire

    def _encrypted_card(self, trade: Trade) -> str:
        """``accNo`` as UnionPay sends it: the masked card number RSA-encrypted
        (PKCS#1 v1.5, base64) with the merchant's signing certificate, the one that
        signed the consume; the merchant decrypts it with its signing key (the ACP
        SDK's ``AcpService.decryptData``)."""
        merchant = self._merchants.get(trade.merchant_id)
        if merchant is None or not merchant.certificates:
            return ""
        cert = merchant.certificates.get(trade.extra.get("certId", ""))
        if cert is None:
            cert = list(merchant.certificates.values())[-1]
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked when registered
        return base64.b64encode(
            key.encrypt(_MASKED_CARD.encode("ascii"), padding.PKCS1v15())
        ).decode("ascii")

    # -- query --------------------------------------------------------------------------

    def _query(self, fields: Mapping[str, str], merchant: UnionPayMerchant) -> dict[str, str]:
        txn = self._txns.get((merchant.mer_id, fields["orderId"]))
        if txn is None or txn.txn_time != fields["txnTime"]:
            raise AcpFailure("34")
        if txn.kind == "consume":
            trade = self._store.get(txn.trade_no)
            assert trade is not None
            wire = self._consume_wire(trade)
            if trade.paid_at is not None:
                wire["issuerIdentifyMode"] = "0"
            orig = unionpay_orig_resp_code(trade)
        else:
            wire = dict(txn.wire)
            orig = SUCCESS  # refunds and undos complete when accepted
        # The answer's bizType is the query's own (000000), as UnionPay's answers have it.
        del wire["bizType"]
        return wire | {"origRespCode": orig, "origRespMsg": RESP_MESSAGES[orig]}

    # -- refund and undo ------------------------------------------------------------------

    def _back(self, fields: Mapping[str, str], merchant: UnionPayMerchant) -> dict[str, str]:
        order_id = fields["orderId"]
        if (merchant.mer_id, order_id) in self._txns:
            raise AcpFailure("12", "orderId已被使用")
        trade = self._store.get(fields["origQryId"])
        if trade is None or trade.channel != CHANNEL or trade.merchant_id != merchant.mer_id:
            raise AcpFailure("35", "origQryId")
        if trade.paid_at is None:
            raise AcpFailure("35", "原交易未成功")
        if trade.close_reason == "undone":
            raise AcpFailure("35", "原交易已撤销")
        amount = parse_txn_amt(fields["txnAmt"])
        assert amount is not None  # checked
        undo = fields["txnType"] == "31"
        now = self._clock.now()
        if undo:
            if not trade.refunded.is_zero():
                raise AcpFailure("35", "原交易已退货")
            if amount != trade.amount:
                raise AcpFailure("36", "撤销金额须等于原交易金额")
            if settle_date(trade.paid_at) != settle_date(now):
                raise AcpFailure("39", "只能撤销当日（23:00前）的交易")
        elif amount > trade.refundable:
            raise AcpFailure("36", "退货金额超过原交易可退金额")
        txn = self._apply_back(trade, fields, amount, undo=undo, now=now)
        return {
            "queryId": txn.query_id,
            "origQryId": trade.trade_no,
            "txnAmt": fields["txnAmt"],
            "currencyCode": "156",
        }

    def _apply_back(
        self,
        trade: Trade,
        fields: Mapping[str, str],
        amount: Money,
        *,
        undo: bool,
        now: datetime,
    ) -> _Txn:
        query_id = self._new_query_id(now)
        total = trade.refunded + amount
        full = total == trade.amount
        refund = Refund(
            channel=CHANNEL,
            merchant_id=trade.merchant_id,
            refund_no=query_id,
            out_refund_no=fields["orderId"],
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            amount=amount,
            refunded_total=total,
            fee_returned=Money.zero(amount.currency),
            created_at=now,
            reason="undo" if undo else "refund",
            full=full,
        )
        self._store.add_refund(refund)
        changed = replace(trade, refunded=total)
        if full:
            changed = replace(
                changed,
                state=TradeState.CLOSED,
                closed_at=now,
                close_reason="undone" if undo else "refunded",
            )
        self._store.replace_trade(changed)
        local = now.astimezone(CHINA_TZ)
        wire = {
            "merId": trade.merchant_id,
            "orderId": fields["orderId"],
            "txnTime": fields["txnTime"],
            "txnType": fields["txnType"],
            "txnSubType": fields["txnSubType"],
            "bizType": fields["bizType"],
            "accessType": fields["accessType"],
            "currencyCode": "156",
            "txnAmt": fields["txnAmt"],
            "queryId": query_id,
            "origQryId": trade.trade_no,
            "traceNo": f"{self._next() % 10**6:06d}",
            "traceTime": f"{local:%m%d%H%M%S}",
            "settleAmt": fields["txnAmt"],
            "settleCurrencyCode": "156",
            "settleDate": f"{settle_date(now):%m%d}",
            "reqReserved": fields.get("reqReserved", ""),
        }
        txn = _Txn("undo" if undo else "refund", fields["txnTime"], trade.trade_no, query_id, wire)
        self._txns[(trade.merchant_id, fields["orderId"])] = txn
        self._notify(
            wire,
            url=fields["backUrl"],
            encoding=fields["encoding"],
            kind=f"{fields['txnType']} {'undo' if undo else 'refund'}",
            trade=changed,
        )
        return txn

    def portal_refund(
        self, mer_id: str, order_id: str, amount: Money, *, out_refund_no: str | None = None
    ) -> Refund:
        """A refund (``04``) made outside the gateway (the merchant's portal), with the
        gateway's rules, notified to the consume's ``backUrl``. ``out_refund_no`` is the
        refund's own ``orderId`` (None: a new one); the same one and amount returns the
        earlier refund unchanged."""
        with self._lock:
            self.merchant(mer_id)
            trade = self.trade(mer_id, order_id)
            if amount.is_zero() or amount.minor < 0:
                raise InvalidInputError("the refund amount must be positive")
            if out_refund_no is None:
                done = sum(1 for r in self._store.refunds(CHANNEL) if r.trade_no == trade.trade_no)
                out_refund_no = f"R{done + 1:02d}{trade.trade_no}"[:40]
            if _ORDER_ID_RE.fullmatch(out_refund_no) is None:
                raise InvalidInputError("out_refund_no: orderId须为8-40位字母或数字")
            earlier = self._store.find_refund(CHANNEL, mer_id, trade.trade_no, out_refund_no)
            if earlier is not None:
                if earlier.amount != amount:
                    raise InvalidInputError(f"refund {out_refund_no} was made for another amount")
                return earlier
            fields = {
                "orderId": out_refund_no,
                "origQryId": trade.trade_no,
                "txnTime": f"{self._clock.now().astimezone(CHINA_TZ):%Y%m%d%H%M%S}",
                "txnType": "04",
                "txnSubType": "00",
                "bizType": "000201",
                "accessType": "0",
                "txnAmt": amount_text(amount),
                "backUrl": trade.notify_url or "",
                "encoding": trade.extra.get("encoding", "UTF-8"),
            }
            try:
                txn = self._back(fields, self.merchant(mer_id))
            except AcpFailure as exc:
                raise TradeStateError(f"UnionPay refuses the refund: {exc.message}") from None
            found = self._store.find_refund(CHANNEL, mer_id, trade.trade_no, out_refund_no)
            assert found is not None, txn  # just added
            return found

    # -- what the buyer, the control API and the Python API do -----------------------------

    def trade(self, mer_id: str, order_id: str) -> Trade:
        trade = self._store.find(CHANNEL, mer_id, out_trade_no=order_id)
        if trade is None:
            raise TradeNotFoundError(f"no UnionPay order {order_id!r} for merchant {mer_id!r}")
        return trade

    def trade_by_no(self, trade_no: str) -> Trade:
        trade = self._store.get(trade_no)
        if trade is None or trade.channel != CHANNEL:
            raise TradeNotFoundError(f"no UnionPay trade {trade_no!r}")
        return trade

    def pay(self, trade: Trade) -> Trade:
        """The cardholder pays: the consume succeeds and its notification is scheduled."""
        with self._lock:
            self.close_expired()
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"UnionPay order {trade.out_trade_no} is {trade.state.value}, "
                    "not awaiting payment"
                )
            now = self._clock.now()
            local = now.astimezone(CHINA_TZ)
            paid = replace(
                trade,
                state=TradeState.PAID,
                paid_at=now,
                buyer_account=_MASKED_CARD,
                extra={
                    **trade.extra,
                    "traceNo": f"{self._next() % 10**6:06d}",
                    "traceTime": f"{local:%m%d%H%M%S}",
                    "settleDate": f"{settle_date(now):%m%d}",
                },
            )
            self._store.replace_trade(paid)
            self._notify(
                self._consume_wire(paid) | {"exchangeRate": "0"},
                url=paid.notify_url,
                encoding=paid.extra.get("encoding", "UTF-8"),
                kind="01 consume",
                trade=paid,
            )
            return paid

    def front_return(self, trade: Trade) -> tuple[str, dict[str, str]] | None:
        """The signed front notification a paid consume's browser posts to its
        ``frontUrl`` (None without one)."""
        if not trade.return_url or trade.paid_at is None:
            return None
        fields = self._consume_wire(trade) | {
            "exchangeRate": "0",
            "version": VERSION,
            "encoding": trade.extra.get("encoding", "UTF-8"),
            "respCode": SUCCESS,
            "respMsg": _FRONT_MSG,
        }
        return trade.return_url, sign_fields(fields, self._signer())

    def close_expired(self) -> list[Trade]:
        """Close unpaid consumes whose ``payTimeout`` has passed (nothing is notified)."""
        now = self._clock.now()
        with self._lock:
            due = self._store.expired(CHANNEL, now)
            closed = [
                replace(t, state=TradeState.CLOSED, closed_at=now, close_reason="timeout")
                for t in due
            ]
            for trade in closed:
                self._store.replace_trade(trade)
            return closed

    # -- notifications --------------------------------------------------------------------

    def _notify(
        self, wire: Mapping[str, str], *, url: str | None, encoding: str, kind: str, trade: Trade
    ) -> None:
        if not url:
            return
        fields = dict(wire) | {
            "version": VERSION,
            "encoding": encoding,
            "respCode": SUCCESS,
            "respMsg": _NOTIFY_MSG,
        }
        signed = sign_fields(fields, self._signer())
        notification = OutboundNotification(
            id=self._scheduler.new_id(),
            channel=CHANNEL,
            merchant_id=trade.merchant_id,
            event_id=wire["queryId"],
            kind=kind,
            trade_no=trade.trade_no,
            url=url,
            headers=(("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"),),
            body=encode_form(signed),
            created_at=self._clock.now(),
            delays=scaled(UNIONPAY_RETRY_DELAYS, self._time_factor),
            event_type="payment" if wire["txnType"] == "01" else "refund",
        )
        self._scheduler.enqueue(notification, _acknowledged)


def _acknowledged(response: httpx.Response) -> bool:
    """UnionPay stops resending once the receiver answers HTTP 200 (whatever the body)."""
    return response.status_code == 200


def _check_mer_id(mer_id: object) -> None:
    if not isinstance(mer_id, str) or _MER_ID_RE.fullmatch(mer_id) is None:
        raise InvalidInputError("mer_id must be 1-32 ASCII letters or digits")


def _echo(fields: Mapping[str, str]) -> dict[str, str]:
    """The request's identification fields an answer repeats (insane values are left out,
    so an answer's ``k=v&…`` body stays parseable)."""
    echo = {
        name: fields[name]
        for name in _ECHOED
        if _ECHO_SAFE_RE.fullmatch(fields.get(name, "")) is not None
    }
    encoding = fields.get("encoding", "")
    echo["version"] = VERSION
    echo["encoding"] = encoding if encoding.upper() == "UTF-8" else "UTF-8"
    return echo
