"""WeChat Pay's notifications: the encrypted envelope, signed, handed to the scheduler.

``TRANSACTION.SUCCESS`` when a buyer pays, ``REFUND.SUCCESS`` / ``REFUND.ABNORMAL``
/ ``REFUND.CLOSED`` when a refund that named a ``notify_url`` ends. Each delivery
attempt is signed afresh by :class:`~payhub_sandbox.wechat._notify.ResigningTransport`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any, Final

import httpx

from payhub.signing import aes_gcm_encrypt
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.delivery._scheduler import OutboundNotification, scaled
from payhub_sandbox.wechat._core import CHANNEL, WechatCore
from payhub_sandbox.wechat._keys import WechatKeys
from payhub_sandbox.wechat._merchants import WechatMerchant
from payhub_sandbox.wechat._notify import RESIGN_HEADER
from payhub_sandbox.wechat._wire import format_time, new_nonce, render_json

__all__ = ["REFUND_EVENTS", "WECHAT_RETRY_DELAYS", "WechatNotifier"]

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

#: A refund's end state → its ``event_type`` and ``summary``.
REFUND_EVENTS: Final = {
    "SUCCESS": ("REFUND.SUCCESS", "退款成功"),
    "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
    "CLOSED": ("REFUND.CLOSED", "退款关闭"),
}


_EVENT_IDS: Final = uuid.uuid5(uuid.NAMESPACE_DNS, "api.mch.weixin.qq.com")


def _acknowledged(response: httpx.Response) -> bool:
    """WeChat Pay stops resending on any 2xx (200 or 204 with no body is the rule)."""
    return 200 <= response.status_code < 300


class WechatNotifier:
    """Builds and schedules the notifications of one sandbox."""

    def __init__(self, core: WechatCore, keys: WechatKeys) -> None:
        self._core = core
        self._keys = keys

    def transaction(self, trade: Trade, merchant: WechatMerchant, resource: dict[str, Any]) -> None:
        """``TRANSACTION.SUCCESS`` carrying ``resource`` (the paid transaction)."""
        if not trade.notify_url:
            return
        self._enqueue(
            merchant,
            trade,
            url=trade.notify_url,
            event_type="TRANSACTION.SUCCESS",
            summary="支付成功",
            original_type="transaction",
            resource=resource,
        )

    def refund(self, refund: Refund, trade: Trade, url: str) -> None:
        """``REFUND.*`` for a refund that ended (its status picks the event)."""
        merchant = self._core.merchant(refund.merchant_id)
        event_type, summary = REFUND_EVENTS[refund.status]
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
        self.event(
            merchant,
            trade.trade_no,
            url=url,
            event_type=event_type,
            summary=summary,
            original_type=original_type,
            resource=resource,
        )

    def event(
        self,
        merchant: WechatMerchant,
        subject_no: str,
        *,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        resource: Mapping[str, Any],
        neutral_type: str = "",
    ) -> None:
        """Schedule one notification to ``url``: the envelope with ``resource``
        encrypted under the merchant's API v3 key, signed. ``subject_no`` names what
        it is about (a transaction id, a transfer bill number) in the delivery log;
        ``neutral_type`` is its channel-neutral event type (empty: guessed)."""
        now = self._core.now()
        nonce = new_nonce(12)
        # A version-5 UUID, as real notifications' ids are (tests/fixtures/wechat/);
        # the same on every resend of this notification, new for every other.
        event_id = str(
            uuid.uuid5(_EVENT_IDS, f"{merchant.mch_id}/{event_type}/{secrets.token_hex(16)}")
        )
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
            *self._keys.sign(merchant, body),
            (RESIGN_HEADER, f"{CHANNEL}:{merchant.mch_id}"),
        )
        notification = OutboundNotification(
            id=self._core.scheduler.new_id(),
            channel=CHANNEL,
            merchant_id=merchant.mch_id,
            event_id=event_id,
            kind=event_type,
            trade_no=subject_no,
            url=url,
            headers=headers,
            body=body,
            created_at=now,
            delays=scaled(WECHAT_RETRY_DELAYS, self._core.time_factor),
            event_type=neutral_type,
        )
        self._core.scheduler.enqueue(notification, _acknowledged)
