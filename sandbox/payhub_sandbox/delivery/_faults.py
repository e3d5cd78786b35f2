"""Delivery faults: notifications that arrive late, twice, out of order, never, again, or forged.

A :class:`DeliveryFault` is matched against each notification when it is
scheduled (channel, merchant, merchant order number, event type). The most
specific matching fault wins (a trade's over a merchant's over a channel's
over a global one; the newest among equals) and is *bound* to the
notification; its effects then apply to that notification's attempts:

==================  ==========================================================
``delay``           the first attempt goes ``delay`` seconds later (sandbox
                    clock); ``(low, high)``: a uniform random delay drawn from
                    the fault's own RNG, seeded by ``seed``
``duplicates``      every attempt is POSTed N times; ``concurrent``: N threads
                    released at once by a barrier
``reorder``         a *payment* notification is held back until a *refund*
                    notification of the same trade has been sent
``drop_first``      the first K attempts are lost on the way (recorded as
                    failed), then the channel's retry schedule goes on
``replay_after``    once acknowledged, the same bytes are sent again after that
                    many seconds (``replays`` times)
``tamper``          the first ``tamper_attempts`` attempts carry a forged
                    body: ``"amount"`` (changed after signing) or
                    ``"signature"`` (corrupted); later resends are genuine
==================  ==========================================================

Delays here are seconds on the sandbox clock, not divided by the time factor
(the channel's retry schedule still is). The scheduler stays channel-neutral:
a channel's body format matters only for ``tamper``, through the
:class:`Tamperer` registered for the channel (:func:`register_tamperer`).
"""

from __future__ import annotations

import itertools
import math
import random
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal, Protocol, TypedDict
from urllib.parse import quote_from_bytes, unquote_to_bytes

from payhub.errors import AmountError
from payhub.money import Money
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox.delivery._records import OutboundNotification

__all__ = [
    "EVENT_TYPES",
    "DeliveryFault",
    "DeliveryFaultNotFoundError",
    "DeliveryFaultOptions",
    "DeliveryFaults",
    "FormTamperer",
    "HeaderSignatureTamperer",
    "NotificationNotFoundError",
    "TamperUnsupportedError",
    "Tamperer",
    "fault_options_from_json",
    "register_tamperer",
    "tamperer_for",
]

#: Channel-neutral event types a notification reports (``OutboundNotification.event_type``).
EVENT_TYPES: Final = ("payment", "refund", "close", "finish", "other", "split", "transfer")

_MAX_COPIES: Final = 100
_MAX_DROPS: Final = 100
_MAX_REPLAYS: Final = 100

Headers = tuple[tuple[str, str], ...]


class DeliveryFaultNotFoundError(SandboxError, KeyError):
    status = 404
    code = "FAULT_NOT_FOUND"

    def __str__(self) -> str:
        return self.message


class NotificationNotFoundError(SandboxError, KeyError):
    status = 404
    code = "NOTIFICATION_NOT_FOUND"

    def __str__(self) -> str:
        return self.message


class TamperUnsupportedError(SandboxError):
    """The channel's tamperer cannot forge this body (e.g. an encrypted amount)."""


class DeliveryFaultOptions(TypedDict, total=False):
    """Keyword arguments of :meth:`Sandbox.add_delivery_fault`."""

    channel: str | None
    merchant_id: str | None
    out_trade_no: str | None
    event_types: Iterable[str] | None
    delay: float | tuple[float, float] | None
    seed: int | None
    duplicates: int
    concurrent: bool
    reorder: bool
    drop_first: int
    replay_after: float | None
    replays: int
    tamper: Literal["amount", "signature"] | None
    tamper_amount: str | None
    tamper_attempts: int
    limit: int | None


@dataclass(frozen=True)
class DeliveryFault:
    """One delivery fault; see the module's table for the effects."""

    id: str
    created_at: datetime
    channel: str | None = None
    merchant_id: str | None = None
    out_trade_no: str | None = None
    event_types: frozenset[str] | None = None
    delay: float | tuple[float, float] | None = None
    seed: int | None = None
    duplicates: int = 1
    concurrent: bool = False
    reorder: bool = False
    drop_first: int = 0
    replay_after: float | None = None
    replays: int = 1
    tamper: Literal["amount", "signature"] | None = None
    tamper_amount: str | None = None
    tamper_attempts: int = 1
    limit: int | None = None
    """How many notifications the fault may take (None: every matching one)."""
    matched: int = 0
    """How many notifications it has taken so far."""

    @property
    def specificity(self) -> tuple[bool, bool, bool]:
        return (
            self.out_trade_no is not None,
            self.merchant_id is not None,
            self.channel is not None,
        )

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.matched >= self.limit

    def effects(self) -> list[str]:
        """The names of the effects this fault has, in the module table's order."""
        names = []
        if self.delay is not None:
            names.append("delay")
        if self.duplicates > 1:
            names.append("duplicates")
        if self.reorder:
            names.append("reorder")
        if self.drop_first:
            names.append("drop_first")
        if self.replay_after is not None:
            names.append("replay_after")
        if self.tamper is not None:
            names.append("tamper")
        return names

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "channel": self.channel,
            "merchant_id": self.merchant_id,
            "out_trade_no": self.out_trade_no,
            "event_types": None if self.event_types is None else sorted(self.event_types),
            "delay": list(self.delay) if isinstance(self.delay, tuple) else self.delay,
            "seed": self.seed,
            "duplicates": self.duplicates,
            "concurrent": self.concurrent,
            "reorder": self.reorder,
            "drop_first": self.drop_first,
            "replay_after": self.replay_after,
            "replays": self.replays,
            "tamper": self.tamper,
            "tamper_amount": self.tamper_amount,
            "tamper_attempts": self.tamper_attempts,
            "limit": self.limit,
            "matched": self.matched,
            "effects": self.effects(),
        }

    def describe(self) -> str:
        """A short human summary, for the console."""
        parts = []
        if self.delay is not None:
            parts.append(
                f"delay {self.delay[0]:g}-{self.delay[1]:g}s"
                if isinstance(self.delay, tuple)
                else f"delay {self.delay:g}s"
            )
        if self.duplicates > 1:
            parts.append(f"×{self.duplicates}{' concurrent' if self.concurrent else ''}")
        if self.reorder:
            parts.append("refund before payment")
        if self.drop_first:
            parts.append(f"drop first {self.drop_first}")
        if self.replay_after is not None:
            parts.append(f"replay ×{self.replays} after {self.replay_after:g}s")
        if self.tamper is not None:
            parts.append(f"tamper {self.tamper} ×{self.tamper_attempts}")
        return ", ".join(parts)


# -- validation -------------------------------------------------------------------


def _number(name: str, value: object, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise InvalidInputError(f"{name} must be a finite number >= {minimum:g}")
    return number


def _integer(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from {low} to {high}")
    return value


def _optional_text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{name} must be a non-empty string")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be true or false")
    return value


def _delay(value: object) -> float | tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise InvalidInputError("delay must be a number or a [low, high] pair")
        low, high = _number("delay", value[0]), _number("delay", value[1])
        if low > high:
            raise InvalidInputError("delay: low must not exceed high")
        return (low, high)
    return _number("delay", value)


def _validated(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(DeliveryFaultOptions.__annotations__)
    if unknown:
        raise InvalidInputError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {
        "channel": _optional_text("channel", options.get("channel")),
        "merchant_id": _optional_text("merchant_id", options.get("merchant_id")),
        "out_trade_no": _optional_text("out_trade_no", options.get("out_trade_no")),
        "delay": _delay(options.get("delay")),
        "duplicates": _integer("duplicates", options.get("duplicates", 1), 1, _MAX_COPIES),
        "concurrent": _flag("concurrent", options.get("concurrent", False)),
        "reorder": _flag("reorder", options.get("reorder", False)),
        "drop_first": _integer("drop_first", options.get("drop_first", 0), 0, _MAX_DROPS),
        "replays": _integer("replays", options.get("replays", 1), 1, _MAX_REPLAYS),
        "tamper_attempts": _integer(
            "tamper_attempts", options.get("tamper_attempts", 1), 1, _MAX_DROPS
        ),
    }
    types = options.get("event_types")
    if types is not None:
        if isinstance(types, str) or not isinstance(types, Iterable):
            raise InvalidInputError("event_types must be a list")
        chosen = frozenset(types)
        if not chosen or not chosen <= set(EVENT_TYPES):
            raise InvalidInputError(f"event_types must be some of {', '.join(EVENT_TYPES)}")
        out["event_types"] = chosen
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInputError("seed must be an integer")
    out["seed"] = seed
    replay_after = options.get("replay_after")
    out["replay_after"] = None if replay_after is None else _number("replay_after", replay_after)
    tamper = options.get("tamper")
    if tamper not in (None, "amount", "signature"):
        raise InvalidInputError("tamper must be 'amount' or 'signature'")
    out["tamper"] = tamper
    amount = _optional_text("tamper_amount", options.get("tamper_amount"))
    if amount is not None:
        if tamper != "amount":
            raise InvalidInputError("tamper_amount needs tamper='amount'")
        try:
            Money.parse(amount, "CNY")
        except AmountError:
            raise InvalidInputError("tamper_amount must be an amount such as 0.01") from None
    out["tamper_amount"] = amount
    limit = options.get("limit")
    out["limit"] = None if limit is None else _integer("limit", limit, 1, 1_000_000)
    if not (
        out["delay"] is not None
        or out["duplicates"] > 1
        or out["reorder"]
        or out["drop_first"]
        or out["replay_after"] is not None
        or out["tamper"] is not None
    ):
        raise InvalidInputError(
            "a fault needs an effect: delay, duplicates, reorder, drop_first, "
            "replay_after or tamper"
        )
    return out


_ALIASES: Final = {"app_id": "merchant_id", "merchant": "merchant_id"}


def fault_options_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The control API's JSON (``app_id`` / ``merchant`` name the merchant) as options."""
    options: dict[str, Any] = {}
    for key, value in data.items():
        name = _ALIASES.get(key, key)
        if name in options and value is not None and options[name] != value:
            raise InvalidInputError(f"{key} contradicts another merchant field")
        if value is not None or name not in options:
            options[name] = value
    return options


# -- tampering --------------------------------------------------------------------


class Tamperer(Protocol):
    """Forges a channel's notification body; registered per channel."""

    def tamper_amount(
        self, notification: OutboundNotification, amount: Money | None
    ) -> tuple[Headers, bytes]:
        """The headers and body with the amount changed (to ``amount``, or some
        other amount if None) *after* signing, so the signature no longer covers it."""
        ...

    def tamper_signature(self, notification: OutboundNotification) -> tuple[Headers, bytes]:
        """The headers and body with the signature corrupted."""
        ...


def _corrupt(signature: bytes) -> bytes:
    """Change one character in the middle of a (base64 or hex) signature."""
    if not signature:
        return b"AAAA"
    index = len(signature) // 2
    while index < len(signature) and not chr(signature[index]).isalnum():
        index += 1
    index = min(index, len(signature) - 1)
    swap = b"B" if signature[index : index + 1] == b"A" else b"A"
    return signature[:index] + swap + signature[index + 1 :]


def _other_amount(current: Money) -> Money:
    one = Money(1, current.currency)
    return Money(2, current.currency) if current == one else one


@dataclass(frozen=True)
class FormTamperer:
    """For form-encoded bodies (Alipay, UnionPay): edits the raw bytes in place,
    so the charset and field order stay as signed."""

    amount_fields: tuple[str, ...]
    signature_field: str
    minor_unit_fields: frozenset[str] = frozenset()
    """Fields holding integer minor units (UnionPay ``txnAmt``) instead of ``12.34``."""

    def _pattern(self, name: str) -> re.Pattern[bytes]:
        return re.compile(rb"(?:^|(?<=&))" + re.escape(name.encode("ascii")) + rb"=([^&]*)")

    def tamper_amount(
        self, notification: OutboundNotification, amount: Money | None
    ) -> tuple[Headers, bytes]:
        body = notification.body
        changed = False
        for name in self.amount_fields:
            pattern = self._pattern(name)
            match = pattern.search(body)
            if match is None:
                continue
            minor = name in self.minor_unit_fields
            original_text = unquote_to_bytes(match.group(1)).decode("ascii", "replace")
            try:
                original = Money(int(original_text)) if minor else Money.parse(original_text, "CNY")
            except (AmountError, ValueError):
                original = Money(0)
            new = amount if amount is not None else _other_amount(original)
            text = str(new.minor) if minor else new.to_decimal_string()
            body = body[: match.start(1)] + text.encode("ascii") + body[match.end(1) :]
            changed = True
        if not changed:
            raise TamperUnsupportedError(
                f"{notification.channel}: no amount field ({', '.join(self.amount_fields)}) "
                "in the notification body"
            )
        return notification.headers, body

    def tamper_signature(self, notification: OutboundNotification) -> tuple[Headers, bytes]:
        pattern = self._pattern(self.signature_field)
        match = pattern.search(notification.body)
        if match is None:
            raise TamperUnsupportedError(
                f"{notification.channel}: no {self.signature_field} field in the body"
            )
        forged = quote_from_bytes(_corrupt(unquote_to_bytes(match.group(1))), safe="").encode()
        body = notification.body
        return notification.headers, body[: match.start(1)] + forged + body[match.end(1) :]


@dataclass(frozen=True)
class HeaderSignatureTamperer:
    """For channels that sign in a header (WeChat Pay's ``Wechatpay-Signature``).

    The amount of such a channel is usually inside an encrypted resource: only
    a tamperer that holds the key can change it, so ``tamper_amount`` is
    unsupported here.
    """

    header: str

    def tamper_amount(
        self, notification: OutboundNotification, amount: Money | None
    ) -> tuple[Headers, bytes]:
        raise TamperUnsupportedError(
            f"{notification.channel}: the amount is not in clear text; register a tamperer"
        )

    def tamper_signature(self, notification: OutboundNotification) -> tuple[Headers, bytes]:
        wanted = self.header.lower()
        headers = []
        found = False
        for name, value in notification.headers:
            if name.lower() == wanted:
                found = True
                headers.append((name, _corrupt(value.encode("ascii")).decode("ascii")))
            else:
                headers.append((name, value))
        if not found:
            raise TamperUnsupportedError(f"{notification.channel}: no {self.header} header")
        return tuple(headers), notification.body


_TAMPERERS: dict[str, Tamperer] = {
    "alipay": FormTamperer(
        amount_fields=("total_amount", "receipt_amount", "buyer_pay_amount", "invoice_amount"),
        signature_field="sign",
    ),
    "unionpay": FormTamperer(
        amount_fields=("txnAmt",),
        signature_field="signature",
        minor_unit_fields=frozenset({"txnAmt"}),
    ),
    "wechat": HeaderSignatureTamperer("Wechatpay-Signature"),
}
_TAMPERERS_LOCK = threading.Lock()


def register_tamperer(channel: str, tamperer: Tamperer) -> None:
    """Use ``tamperer`` for ``channel``'s notifications (replacing any before)."""
    with _TAMPERERS_LOCK:
        _TAMPERERS[channel] = tamperer


def tamperer_for(channel: str) -> Tamperer | None:
    with _TAMPERERS_LOCK:
        return _TAMPERERS.get(channel)


# -- the engine --------------------------------------------------------------------


@dataclass
class Binding:
    """A fault bound to one notification, and how much of it was used up."""

    fault_id: str
    delay: float = 0.0
    dropped: int = 0
    tampered: int = 0
    replays_sent: int = 0


class DeliveryFaults:
    """The faults of one sandbox and their bindings; guarded by the sandbox's lock."""

    def __init__(self, *, clock_now: Callable[[], datetime], lock: threading.RLock) -> None:
        self._now = clock_now
        self._lock = lock
        self._faults: dict[str, DeliveryFault] = {}
        self._rngs: dict[str, random.Random] = {}
        self._bindings: dict[str, Binding] = {}
        self._ids = itertools.count(1)

    def add(self, options: Mapping[str, Any]) -> DeliveryFault:
        values = _validated(options)
        if values["seed"] is None and isinstance(values["delay"], tuple):
            values["seed"] = secrets.randbits(32)  # drawn, and shown, so a run can be replayed
        with self._lock:
            fault = DeliveryFault(id=f"F{next(self._ids):04d}", created_at=self._now(), **values)
            self._faults[fault.id] = fault
            self._rngs[fault.id] = random.Random(fault.seed)
        return fault

    def get(self, fault_id: str) -> DeliveryFault:
        with self._lock:
            try:
                return self._faults[fault_id]
            except KeyError:
                raise DeliveryFaultNotFoundError(f"no delivery fault {fault_id!r}") from None

    def faults(self) -> list[DeliveryFault]:
        with self._lock:
            return list(self._faults.values())

    def remove(self, fault_id: str) -> DeliveryFault:
        with self._lock:
            fault = self.get(fault_id)
            del self._faults[fault_id]
            self._rngs.pop(fault_id, None)
            return fault

    def clear(self) -> list[DeliveryFault]:
        with self._lock:
            removed = list(self._faults.values())
            self._faults.clear()
            self._rngs.clear()
            return removed

    def bind(
        self, notification: OutboundNotification, out_trade_no: str | None, event_type: str
    ) -> tuple[DeliveryFault, Binding] | None:
        """Choose the fault for a notification being scheduled (the most specific)."""
        with self._lock:
            candidates = [
                f
                for f in self._faults.values()
                if not f.exhausted
                and (f.channel is None or f.channel == notification.channel)
                and (f.merchant_id is None or f.merchant_id == notification.merchant_id)
                and (f.out_trade_no is None or f.out_trade_no == out_trade_no)
                and (f.event_types is None or event_type in f.event_types)
            ]
            if not candidates:
                return None
            order = {fid: n for n, fid in enumerate(self._faults)}
            chosen = max(candidates, key=lambda f: (f.specificity, order[f.id]))
            chosen = replace(chosen, matched=chosen.matched + 1)
            self._faults[chosen.id] = chosen
            delay = 0.0
            if isinstance(chosen.delay, tuple):
                delay = self._rngs[chosen.id].uniform(*chosen.delay)
            elif chosen.delay is not None:
                delay = chosen.delay
            binding = Binding(fault_id=chosen.id, delay=delay)
            self._bindings[notification.id] = binding
            return chosen, binding

    def bound(self, notification_id: str) -> tuple[DeliveryFault, Binding] | None:
        """The live fault bound to a notification (None if none, or since removed)."""
        with self._lock:
            binding = self._bindings.get(notification_id)
            if binding is None:
                return None
            fault = self._faults.get(binding.fault_id)
            return None if fault is None else (fault, binding)
