"""Scenarios a QA engineer triggers on a running sandbox, as ``stripe trigger`` does.

``payhub-sandbox trigger SCENARIO --channel alipay`` posts to
``POST /_control/trigger``; ``GET /_control/trigger`` lists the scenarios. Each
acts on one of the channel's trades: the one named (``out_trade_no``, and
``merchant_id`` when two merchants share a number), else the newest trade in
the state the scenario needs (an unpaid one to pay, a paid one to refund). The
shop creates its orders as it always does, through the channel's API; a
scenario makes the buyer, the merchant portal, the network or the channel do
the rest.

=========================  ==================================================================
``payment``                the buyer pays; the payment notification goes out
``payment-failed``         the buyer never pays: the order is closed as a timeout
``refund``                 the merchant refunds from the portal (``amount``; default: all
                           that is refundable); the refund notification goes out
``duplicate-notification`` the buyer pays; each attempt of its notification is sent
                           ``count`` times (default 2)
``delayed-notification``   the buyer pays; its notification goes ``seconds`` later (sandbox
                           clock; default 60)
``lost-notification``      the buyer pays; every attempt of its notification is lost on the
                           way: the shop learns of it only by a query (``payhub sync``)
``outage``                 the gateway answers ``mode`` (``down``, ``system_error``,
                           ``html_error``) to every request for ``seconds`` (real time;
                           default 30); of one merchant with ``merchant_id``
``split-delayed``          the next ``count`` (default 1) splits (分账) stay processing
                           ``seconds`` (channel time divided by the time factor; default
                           60), then succeed; ``split-failed``: then fail
``split-receiver-not-bound`` the next splits are refused: receiver not bound
``transfer-delayed``       the next transfers stay processing, then succeed;
                           ``transfer-failed``: then fail (the balance is given back)
``transfer-insufficient-balance``  the next transfers are refused: balance too low
``transfer-unverified-name``  the next transfers are refused: the payee's name does not match
``transfer-confirmed``     WeChat Pay: the user confirms the newest transfer bill waiting
                           for it (``out_trade_no`` names the ``out_bill_no``)
=========================  ==================================================================

The split and transfer scenarios apply to Alipay and WeChat Pay (UnionPay has
neither in the sandbox) and set the faults of :mod:`payhub_sandbox._splits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import Blueprint, Response, jsonify

from payhub_sandbox._channel import parse_amount
from payhub_sandbox._context import current_sandbox
from payhub_sandbox._control import trade_json
from payhub_sandbox._errors import (
    InvalidInputError,
    SandboxError,
    TradeNotFoundError,
    TradeStateError,
)
from payhub_sandbox._faults import FaultMode
from payhub_sandbox._input import json_body
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._splits import SPLIT_CHANNELS, SplitFaultMode
from payhub_sandbox._state import Trade, TradeState

__all__ = ["SCENARIOS", "TriggerRequest", "run_trigger", "triggers_blueprint"]

#: scenario → what it does (``payhub-sandbox trigger --help`` and the control API list these).
SCENARIOS: Final[Mapping[str, str]] = {
    "payment": "the buyer pays an unpaid order; the payment notification goes out",
    "payment-failed": "the buyer never pays: the unpaid order is closed as a timeout",
    "refund": "the merchant refunds a paid order from the portal (--amount; default all)",
    "duplicate-notification": "the buyer pays; each notification attempt is sent --count "
    "times (default 2)",
    "delayed-notification": "the buyer pays; the notification goes --seconds later "
    "(sandbox clock, default 60)",
    "lost-notification": "the buyer pays; every notification attempt is lost: only a "
    "query (payhub sync) finds the payment",
    "outage": "the gateway answers --mode (down, system_error, html_error) for --seconds "
    "(real time, default 30)",
    "split-delayed": "the next --count (default 1) splits stay processing --seconds "
    "(channel time, default 60), then succeed",
    "split-failed": "the next splits stay processing --seconds, then fail",
    "split-receiver-not-bound": "the next splits are refused: the receiver is not bound",
    "transfer-delayed": "the next transfers stay processing --seconds, then succeed",
    "transfer-failed": "the next transfers stay processing --seconds, then fail "
    "(the balance is given back)",
    "transfer-insufficient-balance": "the next transfers are refused: the balance is too low",
    "transfer-unverified-name": "the next transfers are refused: the payee's name does not match",
    "transfer-confirmed": "WeChat Pay: the user confirms the newest transfer bill waiting for it "
    "(--order names the out_bill_no)",
}

#: split and transfer scenarios → the split fault mode they set
_SPLIT_FAULTS: Final[Mapping[str, SplitFaultMode]] = {
    "split-delayed": SplitFaultMode.PROCESSING_SUCCESS,
    "split-failed": SplitFaultMode.PROCESSING_FAILURE,
    "split-receiver-not-bound": SplitFaultMode.RECEIVER_NOT_BOUND,
    "transfer-delayed": SplitFaultMode.PROCESSING_SUCCESS,
    "transfer-failed": SplitFaultMode.PROCESSING_FAILURE,
    "transfer-insufficient-balance": SplitFaultMode.INSUFFICIENT_BALANCE,
    "transfer-unverified-name": SplitFaultMode.UNVERIFIED_NAME,
}

_OUTAGE_MODES: Final = (FaultMode.DOWN, FaultMode.SYSTEM_ERROR, FaultMode.HTML_ERROR)
#: More drops than any channel's retry schedule has attempts: the notification is lost.
_LOST: Final = 100
_FIELDS: Final = frozenset(
    {"scenario", "channel", "merchant_id", "out_trade_no", "amount", "seconds", "count", "mode"}
)


@dataclass(frozen=True)
class TriggerRequest:
    """What ``POST /_control/trigger`` takes; see the module for each field's use."""

    scenario: str
    channel: str
    merchant_id: str | None = None
    out_trade_no: str | None = None
    amount: str | None = None
    seconds: float | None = None
    count: int | None = None
    mode: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriggerRequest:
        unknown = set(data) - _FIELDS
        if unknown:
            raise InvalidInputError(f"unknown fields {sorted(unknown)}")
        texts: dict[str, str | None] = {}
        for name in ("scenario", "channel", "merchant_id", "out_trade_no", "amount", "mode"):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidInputError(f"{name} must be a non-empty string")
            texts[name] = value
        seconds, count = data.get("seconds"), data.get("count")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
        ):
            raise InvalidInputError("seconds must be a positive number")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise InvalidInputError("count must be a whole number")
        scenario, channel = texts.pop("scenario"), texts.pop("channel")
        if scenario is None or channel is None:
            raise InvalidInputError("scenario and channel are required")
        return cls(
            scenario=scenario,
            channel=channel,
            seconds=None if seconds is None else float(seconds),
            count=count,
            **texts,
        )


@dataclass(frozen=True)
class _Outcome:
    message: str
    trade: Trade | None = None
    extra: Mapping[str, Any] | None = None


def _pick(sandbox: Sandbox, request: TriggerRequest, wanted: str) -> Trade:
    """The trade the scenario acts on: the named one, else the newest ``wanted`` one."""
    trades = [
        t
        for t in sandbox.trades
        if t.channel == request.channel
        and (request.merchant_id is None or t.merchant_id == request.merchant_id)
        and (request.out_trade_no is None or t.out_trade_no == request.out_trade_no)
    ]
    if request.out_trade_no is not None:
        if not trades:
            raise TradeNotFoundError(f"no {request.channel} order {request.out_trade_no!r}")
        if len(trades) > 1:
            raise InvalidInputError(
                f"{len(trades)} {request.channel} orders are numbered "
                f"{request.out_trade_no!r}: name the merchant"
            )
        return trades[0]
    if wanted == "paid":
        found = [t for t in trades if t.state is TradeState.PAID and t.refundable.minor > 0]
    else:
        found = [t for t in trades if t.state is TradeState.PENDING]
    if not found:
        raise TradeNotFoundError(
            f"no {wanted} {request.channel} order"
            + (f" of merchant {request.merchant_id}" if request.merchant_id else "")
            + ": create one in the shop first, or name one with --order"
        )
    return max(found, key=lambda t: t.created_at)


def _pay(sandbox: Sandbox, request: TriggerRequest, **fault: Any) -> _Outcome:
    trade = _pick(sandbox, request, "unpaid")
    if trade.state is not TradeState.PENDING:
        raise TradeStateError(f"{trade.out_trade_no} is {trade.state.value}, not unpaid")
    added = None
    if fault:
        added = sandbox.add_delivery_fault(
            channel=trade.channel,
            merchant_id=trade.merchant_id,
            out_trade_no=trade.out_trade_no,
            event_types=["payment"],
            limit=1,
            **fault,
        )
    try:
        paid = sandbox.channel(trade.channel).pay(trade.merchant_id, trade.out_trade_no)
    except SandboxError:
        if added is not None:
            sandbox.remove_delivery_fault(added.id)
        raise
    described = "" if added is None else f" ({added.describe()})"
    return _Outcome(
        f"{trade.channel} order {trade.out_trade_no} paid{described}",
        paid,
        None if added is None else {"delivery_fault": added.to_json()},
    )


def _payment(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    return _pay(sandbox, request)


def _duplicate(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    count = 2 if request.count is None else request.count
    if count < 2:
        raise InvalidInputError("count must be 2 or more for duplicates")
    return _pay(sandbox, request, duplicates=count)


def _delayed(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    return _pay(sandbox, request, delay=60.0 if request.seconds is None else request.seconds)


def _lost(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    return _pay(sandbox, request, drop_first=_LOST)


def _failed(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    trade = _pick(sandbox, request, "unpaid")
    closed = sandbox.channel(trade.channel).close(trade.merchant_id, trade.out_trade_no)
    return _Outcome(f"{trade.channel} order {trade.out_trade_no} closed unpaid", closed)


def _refund(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    trade = _pick(sandbox, request, "paid")
    amount = trade.refundable if request.amount is None else parse_amount(request.amount)
    refund = sandbox.channel(trade.channel).refund(trade.merchant_id, trade.out_trade_no, amount)
    return _Outcome(
        f"{trade.channel} order {trade.out_trade_no} refunded "
        f"{refund.amount.to_decimal_string()} ({refund.out_refund_no})",
        sandbox.channel(trade.channel).trade(trade.merchant_id, trade.out_trade_no),
        {"refund": refund.to_json()},
    )


def _outage(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    sandbox.channel(request.channel)
    mode = request.mode or FaultMode.DOWN.value
    if mode not in {m.value for m in _OUTAGE_MODES}:
        raise InvalidInputError(f"mode must be one of {', '.join(m.value for m in _OUTAGE_MODES)}")
    seconds = 30.0 if request.seconds is None else request.seconds
    fault = sandbox.set_fault(request.channel, mode, app_id=request.merchant_id, duration=seconds)
    whose = f"merchant {request.merchant_id}" if request.merchant_id else "every merchant"
    return _Outcome(
        f"{request.channel} gateway answers {mode} for {seconds:g}s ({whose})",
        None,
        {"gateway_fault": fault.to_json()},
    )


def _split_fault(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    if request.channel not in SPLIT_CHANNELS:
        raise InvalidInputError(f"{request.channel} has no splits or transfers in the sandbox")
    mode = _SPLIT_FAULTS[request.scenario]
    count = 1 if request.count is None else request.count
    processing = mode in (SplitFaultMode.PROCESSING_SUCCESS, SplitFaultMode.PROCESSING_FAILURE)
    fault = sandbox.splits.faults.set(
        request.channel,
        mode.value,
        merchant_id=request.merchant_id,
        count=count,
        seconds=request.seconds if processing else None,
    )
    what = "splits" if request.scenario.startswith("split") else "transfers"
    whose = f"merchant {request.merchant_id}" if request.merchant_id else "every merchant"
    return _Outcome(
        f"the next {count} {request.channel} {what} ({whose}): {mode.value}",
        None,
        {"split_fault": fault.to_json()},
    )


def _transfer_confirmed(sandbox: Sandbox, request: TriggerRequest) -> _Outcome:
    if request.channel != "wechat":
        raise InvalidInputError("only WeChat Pay transfers wait for the user to confirm")
    sharing = sandbox.wechat.engine.sharing
    waiting = [
        b
        for b in sharing.bills()
        if b.state == "WAIT_USER_CONFIRM"
        and (request.merchant_id is None or b.mch_id == request.merchant_id)
        and (request.out_trade_no is None or b.out_bill_no == request.out_trade_no)
    ]
    if not waiting:
        raise TradeNotFoundError("no WeChat Pay transfer bill is waiting for the user")
    bill = max(waiting, key=lambda b: b.created_at)
    done = sharing.confirm_transfer(bill.mch_id, bill.out_bill_no)
    return _Outcome(
        f"wechat transfer {done.out_bill_no} confirmed by the user: {done.state}",
        None,
        {"transfer": done.to_json()},
    )


_RUNNERS: Final[Mapping[str, Callable[[Sandbox, TriggerRequest], _Outcome]]] = {
    **dict.fromkeys(_SPLIT_FAULTS, _split_fault),
    "transfer-confirmed": _transfer_confirmed,
    "payment": _payment,
    "payment-failed": _failed,
    "refund": _refund,
    "duplicate-notification": _duplicate,
    "delayed-notification": _delayed,
    "lost-notification": _lost,
    "outage": _outage,
}


def run_trigger(sandbox: Sandbox, request: TriggerRequest) -> dict[str, Any]:
    """Run one scenario; what it did, as the control API answers it."""
    runner = _RUNNERS.get(request.scenario)
    if runner is None:
        raise InvalidInputError(
            f"unknown scenario {request.scenario!r}: one of {', '.join(SCENARIOS)}"
        )
    sandbox.channel(request.channel)
    outcome = runner(sandbox, request)
    return {
        "scenario": request.scenario,
        "channel": request.channel,
        "message": outcome.message,
        "trade": None if outcome.trade is None else trade_json(outcome.trade),
        **(outcome.extra or {}),
    }


triggers_blueprint = Blueprint("triggers", __name__, url_prefix="/_control")


@triggers_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


@triggers_blueprint.get("/trigger")
def list_scenarios() -> Response:
    return jsonify([{"scenario": name, "does": does} for name, does in SCENARIOS.items()])


@triggers_blueprint.post("/trigger")
def trigger() -> Response:
    request = TriggerRequest.from_json(json_body())
    return jsonify(run_trigger(current_sandbox(), request))
