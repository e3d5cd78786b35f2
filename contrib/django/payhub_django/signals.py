"""payhub's outbox events as Django signals.

Every event the hub dispatches is sent twice: on the signal of its type (if it
has one) and on :data:`payhub_event`. The sender is the hub; the one keyword
argument is ``event`` (a :class:`payhub.Event`)::

    from django.dispatch import receiver
    from payhub_django.signals import payment_succeeded

    @receiver(payment_succeeded)
    def deliver_card(sender, event, **kwargs):
        if not CardDelivery.objects.filter(event_id=event.id).exists():
            ...

Delivery is at least once: a receiver that raises leaves the event to be sent
again (every receiver of it runs again then), by the next notification of that
payment or by ``payhub events dispatch``. Make receivers idempotent on
``event.id``, and connect them in ``AppConfig.ready()``, before the first
notification arrives.
"""

from __future__ import annotations

from django.dispatch import Signal  # type: ignore[import-untyped]

from payhub import Event, EventType

__all__ = [
    "SIGNALS",
    "anomaly_resolved",
    "payhub_event",
    "payment_amount_mismatch",
    "payment_closed",
    "payment_duplicate",
    "payment_duplicate_refunded",
    "payment_late",
    "payment_refunded",
    "payment_review",
    "payment_succeeded",
    "payment_time_anomaly",
    "refund_failed",
    "refund_review",
    "send_event",
]

#: every event, whatever its type
payhub_event = Signal()
#: ``payment.succeeded``: credited; deliver the goods
payment_succeeded = Signal()
#: ``payment.review``: credited, but a risk rule holds it: do not deliver yet
payment_review = Signal()
#: ``payment.refunded``: a refund succeeded (partial or full)
payment_refunded = Signal()
#: ``payment.closed``: closed unpaid
payment_closed = Signal()
#: ``payment.amount_mismatch``: held for review, not credited
payment_amount_mismatch = Signal()
#: ``payment.duplicate``: paid twice (through another channel); refund one
payment_duplicate = Signal()
#: ``payment.late``: paid after it was closed; refund or review
payment_late = Signal()
#: ``refund.failed``: a refund failed; its amount is refundable again
refund_failed = Signal()
#: ``refund.review``: a refund notification that cannot be applied
refund_review = Signal()
#: ``payment.time_anomaly``: credited, but the channel's paid time is implausible
payment_time_anomaly = Signal()
#: ``payment.duplicate_refunded``: a duplicate or late payment was refunded; the
#: payment itself is unchanged (do not take back what it delivered)
payment_duplicate_refunded = Signal()
#: ``anomaly.resolved``: an anomaly was resolved (who and why in the payload)
anomaly_resolved = Signal()

#: event type -> its signal
SIGNALS: dict[str, Signal] = {
    EventType.PAYMENT_SUCCEEDED: payment_succeeded,
    EventType.PAYMENT_REVIEW: payment_review,
    EventType.PAYMENT_REFUNDED: payment_refunded,
    EventType.PAYMENT_CLOSED: payment_closed,
    EventType.PAYMENT_AMOUNT_MISMATCH: payment_amount_mismatch,
    EventType.PAYMENT_DUPLICATE: payment_duplicate,
    EventType.PAYMENT_LATE: payment_late,
    EventType.REFUND_FAILED: refund_failed,
    EventType.REFUND_REVIEW: refund_review,
    EventType.PAYMENT_TIME_ANOMALY: payment_time_anomaly,
    EventType.DUPLICATE_REFUNDED: payment_duplicate_refunded,
    EventType.ANOMALY_RESOLVED: anomaly_resolved,
}


def send_event(sender: object, event: Event) -> None:
    """Send ``event`` on its type's signal, then on :data:`payhub_event`.

    A receiver's exception propagates (``send``, not ``send_robust``): the hub
    then keeps the event undispatched, to be retried.
    """
    specific = SIGNALS.get(event.type)
    if specific is not None:
        specific.send(sender=sender, event=event)
    payhub_event.send(sender=sender, event=event)
