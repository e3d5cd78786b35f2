"""``gateway.do``: the common checks in the real gateway's order, the signature,
and the dispatch of each method to its job."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Final

from payhub.errors import SignatureError
from payhub.signing import rsa_verify
from payhub_sandbox.alipay._answers import (
    CERT_ONLY_METHODS,
    KNOWN_METHODS,
    PAGE_METHODS,
    UNSUPPORTED_METHODS,
    AlipayFailure,
    GatewayReply,
    GatewayRequest,
    busy,
    invalid,
    missing,
    ordered_node,
    parse_biz,
)
from payhub_sandbox.alipay._bill_links import AlipayBillLinks
from payhub_sandbox.alipay._merchants import (
    AlipayMerchant,
)
from payhub_sandbox.alipay._royalty import AlipayRoyalty
from payhub_sandbox.alipay._wire import (
    SIGN_HASHES,
    node_name,
    normalize_charset,
    parse_time,
    render_response,
    string_to_sign,
    transcode,
)

__all__ = ["AlipayGateway"]

_TIMESTAMP_TOLERANCE: Final = timedelta(minutes=15)


class AlipayGateway(AlipayRoyalty, AlipayBillLinks):
    """Answers ``gateway.do`` requests."""

    _ROYALTY_JOBS: ClassVar[
        Mapping[str, Callable[[AlipayRoyalty, GatewayRequest], dict[str, Any]]]
    ] = {
        "alipay.trade.royalty.relation.bind": AlipayRoyalty._royalty_bind,
        "alipay.trade.royalty.relation.unbind": AlipayRoyalty._royalty_unbind,
        "alipay.trade.royalty.relation.batchquery": AlipayRoyalty._royalty_query,
        "alipay.trade.order.settle": AlipayRoyalty._settle,
        "alipay.trade.order.settle.query": AlipayRoyalty._settle_query,
        "alipay.fund.trans.uni.transfer": AlipayRoyalty._transfer,
        "alipay.fund.trans.common.query": AlipayRoyalty._transfer_query,
    }

    def handle(
        self, raw: Mapping[str, str], *, base_url: str, system_error: str | None = None
    ) -> GatewayReply:
        """Answer one ``gateway.do`` request.

        ``raw`` holds the merged query and form parameters as latin-1 text (one
        character per received byte); they are decoded here with the request's
        ``charset``. ``system_error`` (``"20000"`` or ``"40004"``, an injected
        fault) answers the gateway's "system busy" instead, signed like any
        error, and changes nothing.
        """
        self.close_expired()
        method = raw.get("method", "")
        node = node_name(method) if method in KNOWN_METHODS else "error_response"
        codec = normalize_charset(raw.get("charset"))
        requested_type = raw.get("sign_type", "")
        merchant: AlipayMerchant | None = None
        try:
            if system_error is not None:
                raise busy(system_error)
            if codec is None:
                raise invalid("isv.invalid-charset", "字符集错误")
            try:
                params = transcode(raw, codec)
            except UnicodeDecodeError:
                raise invalid("isv.invalid-charset", "参数编码与charset不一致") from None
            request = self._check(params, codec)
            merchant = request.merchant
            with self._lock:
                return self._dispatch(request, node, base_url)
        except AlipayFailure as failure:
            if method in PAGE_METHODS:
                return GatewayReply(kind="page_error", node=failure.node)
            if merchant is None:
                with self._lock:
                    merchant = self._merchants.get(raw.get("app_id", ""))
            sign_type = (
                merchant.sign_type
                if merchant is not None
                else (requested_type if requested_type in SIGN_HASHES else "RSA2")
            )
            return self._json(
                node, failure.node, sign_type, codec or "utf-8", cert=bool(raw.get("app_cert_sn"))
            )

    def _json(
        self,
        name: str,
        node: Mapping[str, Any],
        sign_type: str,
        codec: str,
        *,
        cert: bool = False,
    ) -> GatewayReply:
        """A signed answer; in certificate mode (``cert``) it names ``alipay_cert_sn``."""
        body = render_response(
            name,
            ordered_node(node),
            self._key,
            sign_type=sign_type,
            codec=codec,
            escape_slashes=self._escape_slashes,
            cert_sn=self.certificates.alipay_cert_sn if cert else None,
        )
        return GatewayReply(kind="json", body=body, codec=codec)

    def _check(self, params: Mapping[str, str], codec: str) -> GatewayRequest:
        """The common checks, in the order the real gateway makes them."""
        method = params.get("method", "")
        if not method:
            raise missing("isv.missing-method", "缺少方法名参数")
        if method not in KNOWN_METHODS:
            raise invalid("isv.invalid-method", "不存在的方法名")
        fmt = params.get("format", "")
        if fmt and fmt.upper() != "JSON":
            raise invalid("isv.invalid-format", "无效的数据格式")
        app_id = params.get("app_id", "")
        if not app_id:
            raise missing("isv.missing-app-id", "缺少AppID参数")
        if not params.get("sign"):
            raise missing("isv.missing-signature", "缺少签名参数")
        sign_type = params.get("sign_type", "")
        if not sign_type:
            raise missing("isv.missing-signature-type", "缺少签名类型参数")
        stamp = params.get("timestamp", "")
        if not stamp:
            raise missing("isv.missing-timestamp", "缺少时间戳参数")
        when = parse_time(stamp)
        if when is None or abs(when - self._clock.now()) > _TIMESTAMP_TOLERANCE:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数")
        if not params.get("version"):
            raise missing("isv.missing-version", "缺少版本参数")
        with self._lock:
            merchant = self._merchants.get(app_id)
        if merchant is None:
            raise invalid("isv.invalid-app-id", "无效的AppID参数")
        if sign_type not in SIGN_HASHES:
            raise invalid("isv.invalid-signature-type", "无效的签名类型参数")
        content = string_to_sign(params)
        if sign_type != merchant.sign_type or not self._verifies(
            merchant, content, params["sign"], codec
        ):
            raise invalid(
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，"
                f"网关生成的验签字符串为：{content}",
            )
        self._check_cert_mode(method, params, merchant)
        if method in UNSUPPORTED_METHODS:
            raise AlipayFailure(
                "40006",
                "Insufficient Permissions",
                "isv.insufficient-isv-permissions",
                "ISV权限不足，建议在开发者中心检查对应功能是否已经添加",
            )
        if params.get("app_auth_token"):
            raise AlipayFailure(
                "20001",
                "Insufficient Token Permissions",
                "aop.invalid-app-auth-token",
                "无效的应用授权令牌",
            )
        return GatewayRequest(
            method, codec, params, parse_biz(params.get("biz_content", "")), merchant
        )

    def _check_cert_mode(
        self, method: str, params: Mapping[str, str], merchant: AlipayMerchant
    ) -> None:
        """Certificate mode: the serials must be the app's and the sandbox root's;
        fund APIs refuse public-key mode."""
        app_cert_sn = params.get("app_cert_sn", "")
        if not app_cert_sn:
            if method in CERT_ONLY_METHODS:
                raise invalid("isv.missing-app-cert-sn", "缺少应用公钥证书序列号")
            return
        if app_cert_sn != merchant.app_cert_sn:
            raise invalid("isv.invalid-app-cert-sn", "应用公钥证书序列号不匹配")
        roots = params.get("alipay_root_cert_sn", "")
        if not roots:
            raise missing("isv.missing-alipay-root-cert-sn", "缺少支付宝根证书序列号")
        if self.certificates.root_cert_sn not in roots.split("_"):
            raise invalid("isv.invalid-alipay-root-cert-sn", "支付宝根证书序列号不匹配")

    @staticmethod
    def _verifies(merchant: AlipayMerchant, content: str, sign: str, codec: str) -> bool:
        try:
            rsa_verify(
                merchant.public_key,
                content.encode(codec),
                sign,
                SIGN_HASHES[merchant.sign_type],
            )
        except (SignatureError, UnicodeEncodeError):
            return False
        return True

    def _dispatch(self, request: GatewayRequest, node: str, base_url: str) -> GatewayReply:
        method = request.method
        if method in PAGE_METHODS:
            trade = self._create(request)
            return GatewayReply(kind="redirect", location=self.cashier_url(trade, base_url))
        if method == "alipay.trade.precreate":
            trade = self._create(request)
            fields: dict[str, Any] = {
                "out_trade_no": trade.out_trade_no,
                "qr_code": self.cashier_url(trade, base_url),
            }
        elif method == "alipay.trade.query":
            fields = self._query(request)
        elif method == "alipay.trade.refund":
            fields = self._refund(request)
        elif method == "alipay.trade.fastpay.refund.query":
            fields = self._refund_query(request)
        elif method == "alipay.trade.close":
            fields = self._close(request)
        elif method in self._ROYALTY_JOBS:
            fields = self._ROYALTY_JOBS[method](self, request)
        elif method == "alipay.data.bill.accountlog.query":
            fields = self._account_log(request)
        else:
            fields = self._bill_url(request, base_url)
        answer: dict[str, Any] = {"code": "10000", "msg": "Success"}
        answer.update(fields)
        return self._json(
            node,
            answer,
            request.merchant.sign_type,
            request.codec,
            cert=bool(request.params.get("app_cert_sn")),
        )
