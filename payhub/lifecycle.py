"""The payment and refund lifecycle: every state, every fact, every decision, in one table.

Everything that decides what a fact about a trade does to a stored payment
lives in this file (after h11's ``_state.py``). It imports no database code: the
store looks up what a decision needs (is the amount the stored one, is it the
trade that paid, what the refund row says, which channels may still hold a
trade) into a :class:`Situation`, :func:`decide` picks the first row of
:data:`TABLE` that matches, and the store carries the :class:`Decision` out
(inbox outcome, state change, anomaly, outbox event) in one transaction.

A *fact* is what a channel says about one trade: a notification, a query
answer (``sync_*``, a checked browser return), a refund answer, or the shop
closing the trade (``hub.close_trade``; also how an expired payment is closed).
Its kind is a :class:`~payhub.models.NotificationKind`; its cause a
:class:`TransitionCause`.

``python -m payhub.lifecycle`` prints ``docs/lifecycle.md`` (the table and a
Mermaid state diagram drawn from it); a test fails if that page drifts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from payhub.events import EventType
from payhub.models import NotificationKind
from payhub.money import Money

__all__ = [
    "ANOMALY_EVENTS",
    "CONDITIONS",
    "HELD_EVENTS",
    "PAID_TIME_SKEW",
    "REFUND_SENDS",
    "TABLE",
    "AnomalyKind",
    "Decision",
    "Effect",
    "InboxOutcome",
    "PaymentState",
    "RefundAnswer",
    "RefundRow",
    "RefundSend",
    "RefundState",
    "Row",
    "Situation",
    "TransitionCause",
    "decide",
    "markdown",
    "paid_time_problem",
    "refund_amount_of",
    "refund_send",
]


# -- states ------------------------------------------------------------------


class PaymentState(enum.StrEnum):
    """The life of a stored payment (the diagram: ``docs/lifecycle.md``)."""

    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CLOSED = "closed"
    REVIEW = "review"

    @property
    def is_paid(self) -> bool:
        """Money was taken (refunds may have followed)."""
        return self in (PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED)


class RefundState(enum.StrEnum):
    PENDING = "pending"  #: reserved: counts against what may still be refunded
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundRow(enum.StrEnum):
    """The stored refund a refund fact names, as the store found it."""

    NONE = "none"  #: no refund of that out_refund_no
    OTHER_PAYMENT = "other_payment"  #: it belongs to another payment
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class InboxOutcome(enum.StrEnum):
    """What the first delivery of a notification did (later deliveries change nothing)."""

    APPLIED = "applied"  #: a state transition was applied
    DUPLICATE = "duplicate"  #: the state it reports was already applied (sync, return)
    REVIEW = "review"  #: recorded as an anomaly for refund or review, never credited
    DEFERRED = "deferred"  #: a refund before its payment: applied when the payment arrives
    IGNORED = "ignored"  #: informational (trade created), or about another channel's trade


class AnomalyKind(enum.StrEnum):
    DUPLICATE_PAYMENT = "duplicate_payment"  #: paid twice, through two channels
    #: paid after the payment was closed, or (the channel's signed data says so)
    #: after its payment deadline
    LATE_PAYMENT = "late_payment"
    AMOUNT_MISMATCH = "amount_mismatch"  #: the channel reports another amount or currency
    ORPHAN_REFUND = "orphan_refund"  #: a refund that cannot be applied to the payment
    #: the channel's paid time is before the payment was created, or in the
    #: future, beyond the clock skew allowed (``Store(paid_time_skew=...)``)
    PAID_TIME = "paid_time"


class TransitionCause(enum.StrEnum):
    PAY = "pay"
    NOTIFICATION = "notification"
    SYNC = "sync"
    RETURN = "return"
    REFUND = "refund"
    CLOSE = "close"


#: The event a credit writes instead when a risk rule holds the payment for
#: review (``payhub.risk``): the shop must not deliver until a person approves,
#: which writes the held event (``payhub reviews approve``).
HELD_EVENTS: dict[EventType, EventType] = {
    EventType.PAYMENT_SUCCEEDED: EventType.PAYMENT_REVIEW,
}

#: The alert event each anomaly raises (once per anomaly).
ANOMALY_EVENTS: dict[AnomalyKind, EventType] = {
    AnomalyKind.DUPLICATE_PAYMENT: EventType.PAYMENT_DUPLICATE,
    AnomalyKind.LATE_PAYMENT: EventType.PAYMENT_LATE,
    AnomalyKind.AMOUNT_MISMATCH: EventType.PAYMENT_AMOUNT_MISMATCH,
    AnomalyKind.ORPHAN_REFUND: EventType.REFUND_REVIEW,
    AnomalyKind.PAID_TIME: EventType.PAYMENT_TIME_ANOMALY,
}

#: How far a channel's paid time may lie before the payment's creation, or after
#: now, before it is flagged (clocks of two machines disagree by seconds; this
#: leaves room for minutes). Beyond it: a ``paid_time`` anomaly and a
#: ``payment.time_anomaly`` event; the payment is still credited.
PAID_TIME_SKEW = timedelta(minutes=10)


# -- what the store looks up before deciding ---------------------------------


@dataclass(frozen=True)
class Situation:
    """A fact and everything about the stored payment that decides what it does.

    The store fills in only what the fact's kind needs; the defaults say
    "nothing unusual".
    """

    state: PaymentState
    kind: NotificationKind
    cause: TransitionCause
    stored: Money
    #: the trade's total as the fact says it; None when it does not say
    reported: Money | None = None
    #: the fact is about the trade that paid this payment (or it names none)
    same_trade: bool = True
    #: the channel's signed data proves it was paid after the payment deadline
    after_deadline: bool = False
    #: why the channel's paid time cannot be right (:func:`paid_time_problem`)
    paid_time_problem: str | None = None
    # refunds
    #: the fact names its refund (out_refund_no) and an amount or running total
    refund_identified: bool = True
    #: a recorded duplicate or late payment of this very trade exists
    refunds_duplicate: bool = False
    refund_row: RefundRow = RefundRow.NONE
    #: refunds payhub did not ask for are applied (``Store(external_refunds=True)``)
    external_refunds: bool = False
    #: this refund's amount (:func:`refund_amount_of`), None if it cannot be known
    refund_amount: Money | None = None
    #: the stored refund asked for another amount
    refund_differs: bool = False
    #: the refunds applied so far, this one not included
    refunded: Money | None = None
    # closes
    #: the payment was taken by another channel than the one closing
    other_channel: bool = False
    #: no channel took it yet, and another channel may still hold a live trade
    other_live_channels: bool = False

    @property
    def refund_exceeds(self) -> bool:
        amount, refunded = self.refund_amount, self.refunded
        if amount is None or refunded is None:
            return False
        return amount.currency != self.stored.currency or refunded + amount > self.stored

    @property
    def refund_completes(self) -> bool:
        amount, refunded = self.refund_amount, self.refunded
        return amount is not None and refunded is not None and refunded + amount == self.stored


# -- what the store does with a decision -------------------------------------


class Effect(enum.StrEnum):
    """What the store writes besides the state, the anomaly and the event."""

    NONE = "none"
    CREDIT = "credit"  #: take the trade (channel, trade id, paid time); apply deferred refunds
    HOLD = "hold"  #: take the trade (channel, trade id) without crediting it
    REFUND = "refund"  #: record the refund succeeded; add it to what is refunded
    FAIL_REFUND = "fail_refund"  #: the pending refund failed: release its reservation
    RESOLVE_DUPLICATE = "resolve_duplicate"  #: close the duplicate/late payment's anomaly


@dataclass(frozen=True)
class Decision:
    outcome: InboxOutcome
    #: the payment's new state; None leaves it as it is
    target: PaymentState | None = None
    #: the transition's event (an anomaly raises its own: :data:`ANOMALY_EVENTS`)
    event: EventType | None = None
    anomaly: AnomalyKind | None = None
    effect: Effect = Effect.NONE
    #: why, for logs and the result; ``{stored}``, ``{reported}``, ``{state}``,
    #: ``{kind}`` and ``{paid_time_problem}`` are filled in by :func:`decide`
    reason: str | None = None


# -- conditions (named, so that the table reads as prose) --------------------

Condition = Callable[[Situation], bool]

CONDITIONS: dict[str, Condition] = {
    "always": lambda s: True,
    "no amount": lambda s: s.reported is None,
    "amount differs": lambda s: s.reported is not None and s.reported != s.stored,
    "after deadline": lambda s: s.after_deadline,
    "another trade": lambda s: not s.same_trade,
    "paid time implausible": lambda s: s.paid_time_problem is not None,
    "by notification": lambda s: s.cause is TransitionCause.NOTIFICATION,
    "not credited, refunds a duplicate": lambda s: (
        (not s.state.is_paid or not s.same_trade) and s.refunds_duplicate
    ),
    "not credited by this trade": lambda s: not s.state.is_paid or not s.same_trade,
    "refund unidentified": lambda s: not s.refund_identified,
    "refund unknown": lambda s: s.refund_row in (RefundRow.NONE, RefundRow.OTHER_PAYMENT),
    "refund of another payment": lambda s: s.refund_row is RefundRow.OTHER_PAYMENT,
    "refund failed already": lambda s: s.refund_row is RefundRow.FAILED,
    "refund succeeded already": lambda s: s.refund_row is RefundRow.SUCCEEDED,
    "refund not asked, not accepted": lambda s: (
        s.refund_row is RefundRow.NONE and not s.external_refunds
    ),
    "refund amount unknown": lambda s: s.refund_amount is None,
    "refund differs from asked": lambda s: s.refund_differs,
    "refunds exceed paid": lambda s: s.refund_exceeds,
    "refunds all": lambda s: s.refund_completes,
    "another channel's trade": lambda s: s.other_channel,
    "other channels live": lambda s: s.other_live_channels,
}


@dataclass(frozen=True)
class Row:
    states: frozenset[PaymentState]
    kinds: frozenset[NotificationKind]
    when: str  #: a key of :data:`CONDITIONS`
    then: Decision


_S = PaymentState
_K = NotificationKind
_O = InboxOutcome
_A = AnomalyKind
_E = EventType
_X = Effect

ALL = frozenset(PaymentState)
PAID_STATES = frozenset({_S.PAID, _S.PARTIALLY_REFUNDED, _S.REFUNDED})
TAKEN = PAID_STATES | {_S.REVIEW}
NOT_PENDING = ALL - {_S.PENDING}
PAYS = frozenset({_K.PAYMENT, _K.FINISHED})
REFUNDS = frozenset({_K.REFUND, _K.REFUND_FAILED})
REFUND = frozenset({_K.REFUND})
REFUND_FAILED = frozenset({_K.REFUND_FAILED})
CLOSES = frozenset({_K.CLOSED})
INFORMS = frozenset({_K.PENDING})

_MISMATCH = "amount mismatch: stored {stored}, channel says {reported}"


def _row(
    states: frozenset[PaymentState] | PaymentState,
    kinds: frozenset[NotificationKind],
    when: str,
    outcome: InboxOutcome,
    reason: str | None = None,
    *,
    target: PaymentState | None = None,
    event: EventType | None = None,
    anomaly: AnomalyKind | None = None,
    effect: Effect = Effect.NONE,
) -> Row:
    if isinstance(states, PaymentState):
        states = frozenset({states})
    return Row(states, kinds, when, Decision(outcome, target, event, anomaly, effect, reason))


#: The first row whose states, kinds and condition match decides. Read it top down.
TABLE: tuple[Row, ...] = (
    # -- a payment: notification, or a query answering paid ------------------
    _row(_S.PENDING, PAYS, "no amount", _O.IGNORED,
         "the answer gives no amount: not proof of payment"),
    # closed, so that a later query answering "paid" is a late payment too
    _row(_S.PENDING, PAYS, "after deadline", _O.REVIEW, "paid after the payment's deadline",
         target=_S.CLOSED, event=_E.PAYMENT_CLOSED, anomaly=_A.LATE_PAYMENT),
    _row(_S.PENDING, PAYS, "amount differs", _O.REVIEW, _MISMATCH,
         target=_S.REVIEW, anomaly=_A.AMOUNT_MISMATCH, effect=_X.HOLD),
    _row(_S.PENDING, PAYS, "paid time implausible", _O.APPLIED, "{paid_time_problem}",
         target=_S.PAID, event=_E.PAYMENT_SUCCEEDED, anomaly=_A.PAID_TIME, effect=_X.CREDIT),
    _row(_S.PENDING, PAYS, "always", _O.APPLIED,
         target=_S.PAID, event=_E.PAYMENT_SUCCEEDED, effect=_X.CREDIT),
    _row(_S.CLOSED, PAYS, "always", _O.REVIEW,
         "paid after the payment was closed", anomaly=_A.LATE_PAYMENT),
    _row(TAKEN, PAYS, "another trade", _O.REVIEW,
         "paid twice: the payment was taken by another trade", anomaly=_A.DUPLICATE_PAYMENT),
    _row(TAKEN, PAYS, "amount differs", _O.REVIEW, _MISMATCH, anomaly=_A.AMOUNT_MISMATCH),
    _row(_S.REVIEW, PAYS, "always", _O.REVIEW, "the payment is held for review"),
    _row(PAID_STATES, PAYS, "always", _O.DUPLICATE, "already paid by this trade"),
    # -- a refund: notification, or the channel's answer to payhub's refund --
    _row(_S.PENDING, REFUNDS, "by notification", _O.DEFERRED,
         "refund before its payment: applied when paid"),
    _row(_S.PENDING, REFUNDS, "always", _O.IGNORED, "the payment is not paid"),
    _row(NOT_PENDING, REFUNDS, "amount differs", _O.REVIEW, _MISMATCH,
         anomaly=_A.AMOUNT_MISMATCH),
    _row(NOT_PENDING, REFUND, "not credited, refunds a duplicate", _O.IGNORED,
         "refund of a duplicate or late payment", effect=_X.RESOLVE_DUPLICATE),
    _row(NOT_PENDING, REFUNDS, "not credited by this trade", _O.REVIEW,
         "refund of a trade that was never credited", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUNDS, "refund unidentified", _O.REVIEW,
         "refund without out_refund_no or amount", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND_FAILED, "refund unknown", _O.IGNORED,
         "failure of a refund payhub does not know"),
    _row(PAID_STATES, REFUND_FAILED, "refund failed already", _O.DUPLICATE,
         "refund failure already recorded"),
    _row(PAID_STATES, REFUND_FAILED, "refund succeeded already", _O.REVIEW,
         "a refund reported failed after it succeeded", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND_FAILED, "always", _O.APPLIED, effect=_X.FAIL_REFUND),
    _row(PAID_STATES, REFUND, "refund of another payment", _O.REVIEW,
         "out_refund_no belongs to another payment", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND, "refund succeeded already", _O.DUPLICATE,
         "refund already applied"),
    _row(PAID_STATES, REFUND, "refund not asked, not accepted", _O.REVIEW,
         "a refund payhub did not ask for", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND, "refund amount unknown", _O.REVIEW,
         "running refund total below what is applied", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND, "refund differs from asked", _O.REVIEW,
         "refund amount differs from the one asked", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND, "refunds exceed paid", _O.REVIEW,
         "refunds would exceed the amount paid", anomaly=_A.ORPHAN_REFUND),
    _row(PAID_STATES, REFUND, "refunds all", _O.APPLIED,
         target=_S.REFUNDED, event=_E.PAYMENT_REFUNDED, effect=_X.REFUND),
    _row(PAID_STATES, REFUND, "always", _O.APPLIED,
         target=_S.PARTIALLY_REFUNDED, event=_E.PAYMENT_REFUNDED, effect=_X.REFUND),
    # -- a close: notification, query answering closed, the shop closing ----
    _row(_S.CLOSED, CLOSES, "always", _O.DUPLICATE, "already closed"),
    _row(_S.PENDING, CLOSES, "another channel's trade", _O.IGNORED,
         "another channel's trade closed; this one may be paid"),
    _row(_S.PENDING, CLOSES, "other channels live", _O.IGNORED,
         "another channel's trade may still be paid"),
    _row(_S.PENDING, CLOSES, "always", _O.APPLIED,
         target=_S.CLOSED, event=_E.PAYMENT_CLOSED),
    _row(TAKEN, CLOSES, "always", _O.IGNORED, "a {state} payment is not closed by this"),
    # -- informational (the trade was created) -------------------------------
    _row(ALL, INFORMS, "always", _O.IGNORED, "{kind} is informational"),
)  # fmt: skip


def decide(situation: Situation) -> Decision:
    """The decision of the first row of :data:`TABLE` that matches, its reason filled in."""
    for row in TABLE:
        if (
            situation.state in row.states
            and situation.kind in row.kinds
            and CONDITIONS[row.when](situation)
        ):
            decision = row.then
            if decision.reason is None or "{" not in decision.reason:
                return decision
            reason = decision.reason.format(
                stored=situation.stored,
                reported=situation.reported,
                state=situation.state.value,
                kind=situation.kind.value,
                paid_time_problem=situation.paid_time_problem,
            )
            return Decision(
                decision.outcome,
                decision.target,
                decision.event,
                decision.anomaly,
                decision.effect,
                reason,
            )
    raise AssertionError(f"no row for {situation.state} / {situation.kind}")  # pragma: no cover


# -- sending a reserved refund: what the channel's answer means for it ---------


class RefundAnswer(enum.StrEnum):
    """How the channel answered payhub's refund request (the hub's own call)."""

    FINAL = "final"  #: succeeded, failed or closed: the store applies it as a fact
    PENDING = "pending"  #: accepted, not done (Alipay's ``fund_change`` N)
    REFUSED = "refused"  #: a business error: the channel says it did not make it
    UNKNOWN = "unknown"  #: timeout, network or system error: it may have been made


@dataclass(frozen=True)
class RefundSend:
    """What the hub does after sending a reserved refund, by (answer, resend)."""

    answer: RefundAnswer
    #: the refund was reserved before: this send is a retry of the same transaction
    resend: bool
    #: release the reservation (the refund failed; its amount is refundable again)
    release: bool
    #: ask the channel where the refund stands (``sync_refund``) and return that
    ask: bool
    reason: str


#: The refund retry rules (issue 12 §3): every (answer, resend) pair once.
REFUND_SENDS: tuple[RefundSend, ...] = (
    RefundSend(RefundAnswer.FINAL, False, False, False,
               "applied as a refund fact (TABLE above)"),
    RefundSend(RefundAnswer.FINAL, True, False, False,
               "applied as a refund fact (TABLE above)"),
    RefundSend(RefundAnswer.PENDING, False, False, False,
               "left pending and reserved; sync_refund settles it"),
    RefundSend(RefundAnswer.PENDING, True, False, True,
               "a retry answered pending moved no money by itself: ask where it stands"),
    RefundSend(RefundAnswer.REFUSED, False, True, False,
               "refused on its first send: nothing was made, release the reservation"),
    RefundSend(RefundAnswer.REFUSED, True, False, True,
               "a retry refused (UnionPay: duplicate): the earlier send may have been made; ask"),
    RefundSend(RefundAnswer.UNKNOWN, False, False, False,
               "it may have been made: kept reserved, settled only by a query"),
    RefundSend(RefundAnswer.UNKNOWN, True, False, False,
               "it may have been made: kept reserved, settled only by a query"),
)  # fmt: skip

_REFUND_SENDS = {(row.answer, row.resend): row for row in REFUND_SENDS}


def refund_send(answer: RefundAnswer, *, resend: bool) -> RefundSend:
    """The row of :data:`REFUND_SENDS` for this answer to this send."""
    return _REFUND_SENDS[(answer, resend)]


# -- the arithmetic a situation needs (pure) ---------------------------------


def paid_time_problem(
    paid: datetime | None, created: datetime, now: datetime, skew: timedelta = PAID_TIME_SKEW
) -> str | None:
    """Why the channel's paid time cannot be right, or None (see :data:`PAID_TIME_SKEW`)."""
    if paid is None:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    if paid < created - skew:
        return (
            f"the channel's paid time {paid.isoformat()} is before the payment was "
            f"created ({created.isoformat()}), beyond the allowed clock skew of {skew}"
        )
    if paid > now + skew:
        return (
            f"the channel's paid time {paid.isoformat()} is in the future "
            f"(now {now.isoformat()}), beyond the allowed clock skew of {skew}"
        )
    return None


def refund_amount_of(
    stored: Money,
    refunded: Money,
    refund_amount: Money | None,
    refunded_total: Money | None,
    asked: Money | None,
) -> Money | None:
    """This refund's amount: as the channel says it, else derived from a running total.

    With a running total (Alipay's ``refund_fee``) the refund we asked for
    (``asked``) keeps its own amount, provided the total covers it; a refund made
    elsewhere (the merchant console) is what the total adds to what is
    already applied. A total that adds nothing cannot be a new refund.
    """
    if refund_amount is not None:
        return refund_amount
    if refunded_total is None or refunded_total.currency != stored.currency:
        return None
    if asked is not None:
        return asked if refunded + asked <= refunded_total else None
    added = refunded_total - refunded
    return added if added.minor > 0 else None


# -- the documentation page drawn from the table -----------------------------


def _names(values: frozenset[PaymentState] | frozenset[NotificationKind], every: int) -> str:
    if len(values) == every:
        return "any"
    return ", ".join(sorted(v.value for v in values))


def mermaid() -> str:
    """A Mermaid state diagram of every transition in :data:`TABLE`."""
    lines = ["stateDiagram-v2", "    [*] --> pending: begin_payment"]
    seen: set[str] = set()
    for row in TABLE:
        target = row.then.target
        if target is None:
            continue
        kinds = "/".join(sorted(k.value for k in row.kinds))
        label = kinds if row.when == "always" else f"{kinds} [{row.when}]"
        for state in sorted(row.states, key=list(PaymentState).index):
            line = f"    {state.value} --> {target.value}: {label}"
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return "\n".join(lines)


def markdown() -> str:
    """``docs/lifecycle.md``: the diagram and the whole table."""
    out = [
        "# The payment lifecycle",
        "",
        "<!-- generated by `python -m payhub.lifecycle > docs/lifecycle.md`; do not edit -->",
        "",
        "Every state a stored payment can be in, every fact a channel can report",
        "about its trade, and what each does. The store looks up what a decision",
        "needs, `payhub.lifecycle.decide` picks the first matching row below, and",
        "the store carries it out in one transaction (see [the store](store.md)).",
        "An anomaly is recorded once and raises its own alert event",
        "(" + ", ".join(f"`{a.value}` → `{e.value}`" for a, e in ANOMALY_EVENTS.items()) + ").",
        "",
        "```mermaid",
        mermaid(),
        "```",
        "",
        "| states | facts | when | outcome | target | event | anomaly | effect | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in TABLE:
        d = row.then
        cells = [
            _names(row.states, len(PaymentState)),
            _names(row.kinds, len(NotificationKind)),
            row.when,
            d.outcome.value,
            d.target.value if d.target else "",
            d.event.value if d.event else "",
            d.anomaly.value if d.anomaly else "",
            "" if d.effect is Effect.NONE else d.effect.value,
            (d.reason or "").replace("|", "\\|"),
        ]
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        "## Sending a refund",
        "",
        "What the hub does with a reserved refund after the channel answers its",
        "request (a refund fact the answer carries goes through the table above).",
        "",
        "| answer | resend | release reservation | ask the channel | reason |",
        "|---|---|---|---|---|",
    ]
    for send in REFUND_SENDS:
        flags = (
            "yes" if send.resend else "no",
            "yes" if send.release else "",
            "yes" if send.ask else "",
        )
        out.append(f"| {send.answer.value} | {' | '.join(flags)} | {send.reason} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown(), end="")
