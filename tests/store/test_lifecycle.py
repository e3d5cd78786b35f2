"""payhub.lifecycle: a pure table with a decision for every (state, fact) pair."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from payhub import lifecycle
from payhub.events import EventType
from payhub.lifecycle import (
    AnomalyKind,
    InboxOutcome,
    PaymentState,
    Situation,
    TransitionCause,
    decide,
)
from payhub.models import NotificationKind
from payhub.money import Money

YUAN = Money(100)


@pytest.mark.parametrize(
    ("state", "kind", "cause"),
    list(itertools.product(PaymentState, NotificationKind, TransitionCause)),
)
def test_every_state_and_fact_has_a_decision(
    state: PaymentState, kind: NotificationKind, cause: TransitionCause
) -> None:
    decision = decide(Situation(state=state, kind=kind, cause=cause, stored=YUAN, reported=YUAN))
    assert decision.outcome in InboxOutcome


@pytest.mark.parametrize("state", [PaymentState.PENDING, PaymentState.CLOSED])
def test_a_payment_after_its_deadline_is_late_not_credited(state: PaymentState) -> None:
    situation = Situation(
        state=state,
        kind=NotificationKind.PAYMENT,
        cause=TransitionCause.NOTIFICATION,
        stored=YUAN,
        reported=YUAN,
        after_deadline=True,
    )
    decision = decide(situation)
    assert decision.anomaly is AnomalyKind.LATE_PAYMENT
    assert decision.outcome is InboxOutcome.REVIEW  # acknowledged: recorded, not resent
    assert decision.target in (None, PaymentState.CLOSED)
    assert decision.event is not EventType.PAYMENT_SUCCEEDED


def test_pending_to_paid_and_a_mismatch_to_review() -> None:
    base = Situation(
        state=PaymentState.PENDING,
        kind=NotificationKind.PAYMENT,
        cause=TransitionCause.NOTIFICATION,
        stored=YUAN,
        reported=YUAN,
    )
    assert decide(base).target is PaymentState.PAID
    odd = decide(Situation(**{**base.__dict__, "reported": Money(99)}))
    assert odd.target is PaymentState.REVIEW
    assert odd.anomaly is AnomalyKind.AMOUNT_MISMATCH
    assert odd.reason == "amount mismatch: stored 1.00 CNY, channel says 0.99 CNY"


def test_the_lifecycle_imports_no_database_code() -> None:
    tree = ast.parse(Path(lifecycle.__file__).read_text(encoding="utf-8"))
    nodes = list(ast.walk(tree))
    imported = [a.name for n in nodes if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    for name in imported:
        assert name.split(".")[0] not in ("sqlalchemy", "alembic", "psycopg", "pymysql")
        assert not name.startswith("payhub.store"), name


def test_refund_send_rules_cover_every_answer_once() -> None:
    """The refund retry rules live in the table: one row per (answer, resend)."""
    from payhub.lifecycle import REFUND_SENDS, RefundAnswer, refund_send

    pairs = [(row.answer, row.resend) for row in REFUND_SENDS]
    assert sorted(pairs) == sorted((a, r) for a in RefundAnswer for r in (False, True))
    # only a first send's refusal releases; only a retry refused or answered pending asks
    assert refund_send(RefundAnswer.REFUSED, resend=False).release
    assert not refund_send(RefundAnswer.REFUSED, resend=True).release
    assert refund_send(RefundAnswer.REFUSED, resend=True).ask
    assert refund_send(RefundAnswer.PENDING, resend=True).ask
    assert not refund_send(RefundAnswer.UNKNOWN, resend=False).release
    assert not any(row.release for row in REFUND_SENDS if row.answer is RefundAnswer.UNKNOWN)
