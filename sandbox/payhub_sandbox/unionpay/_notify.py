"""UnionPay's notifications to ``backUrl``, the browser's front notification to
``frontUrl``, and a consume's fields as they show it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

import httpx
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payhub_sandbox._state import Trade
from payhub_sandbox.delivery._scheduler import OutboundNotification, scaled
from payhub_sandbox.unionpay._answers import (
    CHANNEL,
    FRONT_MSG,
    MASKED_CARD,
    NOTIFY_MSG,
    SUCCESS,
)
from payhub_sandbox.unionpay._base import UnionPayBase
from payhub_sandbox.unionpay._wire import (
    VERSION,
    amount_text,
    encode_form,
    sign_fields,
)

__all__ = ["UNIONPAY_RETRY_DELAYS", "UnionPayNotifier"]

#: Seconds between notification attempts: 1m, 2m, 4m, 8m, 16m after the first
#: (6 attempts in all). UnionPay documents "a few resends with growing
#: intervals" without the schedule: this one is the sandbox's assumption.
UNIONPAY_RETRY_DELAYS: Final = (60.0, 120.0, 240.0, 480.0, 960.0)


class UnionPayNotifier(UnionPayBase):
    """Builds, signs and schedules notifications; builds front notifications."""

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
            key.encrypt(MASKED_CARD.encode("ascii"), padding.PKCS1v15())
        ).decode("ascii")

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
            "respMsg": FRONT_MSG,
        }
        return trade.return_url, sign_fields(fields, self._signer())

    def _notify(
        self, wire: Mapping[str, str], *, url: str | None, encoding: str, kind: str, trade: Trade
    ) -> None:
        if not url:
            return
        fields = dict(wire) | {
            "version": VERSION,
            "encoding": encoding,
            "respCode": SUCCESS,
            "respMsg": NOTIFY_MSG,
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
