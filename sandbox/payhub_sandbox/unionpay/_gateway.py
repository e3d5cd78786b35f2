"""``/gateway/api/<endpoint>.do``: the common checks and the signature, in the
gateway's order, then each endpoint's job."""

from __future__ import annotations

import re
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from payhub_sandbox.unionpay._answers import (
    ORDER_ID_RE,
    QUERY_ID_RE,
    RESP_MESSAGES,
    SERVED,
    SUCCESS,
    URL_RE,
    AcpFailure,
    UnionPayMerchant,
    UnionPayReply,
    echo_fields,
)
from payhub_sandbox.unionpay._files import UnionPayFiles
from payhub_sandbox.unionpay._wire import (
    SIGN_METHOD,
    VERSION,
    parse_form,
    parse_txn_amt,
    parse_txn_time,
    render_body,
    sign_fields,
    signature_verifies,
)

__all__ = ["UnionPayGateway"]


class UnionPayGateway(UnionPayFiles):
    """Answers the ACP endpoints."""

    def handle(self, endpoint: str, raw: bytes) -> UnionPayReply:
        """Answer one request to an ACP endpoint (``front``, ``app``, ``back``, ``query``)."""
        if endpoint not in SERVED:
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
            answer = echo_fields(fields) | {"respCode": failure.code, "respMsg": failure.message}
            if endpoint == "front":
                return UnionPayReply(kind="page_error", fields=answer)
            return UnionPayReply(kind="body", body=self._signed_body(answer))

    def system_error(self, code: str, fields: Mapping[str, str]) -> dict[str, str]:
        """The answer of a gateway that failed before handling a request (a gateway
        fault): ``respCode`` ``code`` (``03``, ``01``, …) with the request's
        identification fields, unsigned; see :meth:`signed_body`."""
        message = RESP_MESSAGES.get(code, RESP_MESSAGES["06"])
        return echo_fields(fields) | {"respCode": code, "respMsg": message}

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
        if kind not in SERVED[endpoint]:
            raise AcpFailure("32", "txnType/txnSubType/bizType")
        if fields["accessType"] != "0":
            raise AcpFailure("32", "accessType (只模拟商户直连 0)")
        if endpoint == "file":
            return  # its own fields: UnionPayFiles._file_transfer
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
        if ORDER_ID_RE.fullmatch(fields["orderId"]) is None:
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
            if url and URL_RE.fullmatch(url) is None:
                raise AcpFailure("10", name)
        timeout = fields.get("payTimeout", "")
        if consume and timeout and parse_txn_time(timeout) is None:
            raise AcpFailure("10", "payTimeout须为yyyyMMddHHmmss")
        if endpoint == "back" and QUERY_ID_RE.fullmatch(fields["origQryId"]) is None:
            raise AcpFailure("10", "origQryId")

    def _dispatch(
        self, endpoint: str, fields: Mapping[str, str], merchant: UnionPayMerchant
    ) -> UnionPayReply:
        if endpoint == "front":
            return UnionPayReply(kind="cashier", trade=self._consume(endpoint, fields, merchant))
        base = echo_fields(fields) | {"respCode": SUCCESS, "respMsg": RESP_MESSAGES[SUCCESS]}
        if fields.get("reqReserved"):
            base["reqReserved"] = fields["reqReserved"]
        if endpoint == "file":
            answer = base | self._file_transfer(fields, merchant)
        elif endpoint == "app":
            trade = self._consume(endpoint, fields, merchant)
            answer = base | {"tn": trade.extra["tn"]}
        elif endpoint == "back":
            answer = base | self._back(fields, merchant)
        else:
            answer = base | self._query(fields, merchant)
        return UnionPayReply(kind="body", body=self._signed_body(answer))
