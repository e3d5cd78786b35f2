"""Consumes (``01``): creating them (front and app), the cardholder paying,
``payTimeout`` expiry, and ``queryTrans.do``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import (
    TradeStateError,
)
from payhub_sandbox._state import Trade, TradeState
from payhub_sandbox.unionpay._answers import (
    CHANNEL,
    MASKED_CARD,
    PRODUCTS,
    RESP_MESSAGES,
    SUCCESS,
    AcpFailure,
    Txn,
    UnionPayMerchant,
    unionpay_orig_resp_code,
)
from payhub_sandbox.unionpay._notify import UnionPayNotifier
from payhub_sandbox.unionpay._wire import (
    parse_txn_amt,
    parse_txn_time,
    settle_date,
)

__all__ = ["UnionPayConsumes"]


class UnionPayConsumes(UnionPayNotifier):
    """Consumes and queries."""

    def _consume(
        self, endpoint: str, fields: Mapping[str, str], merchant: UnionPayMerchant
    ) -> Trade:
        order_id, txn_time = fields["orderId"], fields["txnTime"]
        amount = parse_txn_amt(fields["txnAmt"])
        assert amount is not None  # checked
        product = PRODUCTS[endpoint]
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
        self._txns[(merchant.mer_id, order_id)] = Txn(
            "consume", txn_time, trade.trade_no, trade.trade_no
        )
        return trade

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
                buyer_account=MASKED_CARD,
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
