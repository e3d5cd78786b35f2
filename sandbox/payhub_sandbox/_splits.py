"""State shared by the channels' split (分账) and transfer (转账) simulators:
merchant balances, known payees and the failure modes a test sets.

Channel-neutral and Flask-free; every method is thread-safe (the sandbox's
lock). Each channel keeps its own receivers, split orders and transfers and
answers them in its own words; what they share lives here:

* **balances**: what a merchant's transfers draw on (minor units, CNY). A
  merchant nobody set starts with :data:`DEFAULT_BALANCE`. A transfer above the
  balance is refused with the channel's "balance not enough" error; a transfer
  that fails after "processing" gives its amount back.
* **payees**: accounts whose real name the sandbox knows. A transfer (or
  receiver) naming such an account with another name is refused as the
  channel refuses an unverified name.
* **faults** (:class:`SplitFaults`): make the next splits or transfers fail or
  linger, per channel and optionally per merchant:

  ======================  ===================================================
  ``receiver_not_bound``  a split is refused: its receiver is not bound
  ``insufficient_balance``  a transfer is refused: the balance is too low
  ``unverified_name``     a transfer is refused: the payee's name does not match
  ``processing_success``  accepted as processing; succeeds ``seconds`` later
  ``processing_failure``  accepted as processing; fails ``seconds`` later
  ======================  ===================================================

  ``seconds`` is channel time (default 60) divided by the sandbox's
  ``time_factor`` on the sandbox clock, as every other delay of the sandbox.
"""

from __future__ import annotations

import enum
import math
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from payhub.money import Money
from payhub_sandbox._errors import InvalidInputError

__all__ = [
    "DEFAULT_BALANCE",
    "DEFAULT_PROCESSING_SECONDS",
    "SPLIT_CHANNELS",
    "Outcome",
    "SplitBook",
    "SplitFault",
    "SplitFaultMode",
    "SplitFaults",
]

#: What a merchant's balance holds until set: 1,000,000.00 CNY.
DEFAULT_BALANCE: Final = Money(100_000_000)
#: How long (channel seconds, before ``time_factor``) "processing" lasts by default.
DEFAULT_PROCESSING_SECONDS: Final = 60.0
#: The longest "processing" a fault may ask for (channel seconds): a week.
_MAX_PROCESSING_SECONDS: Final = 7 * 86400.0
#: The channels that split and transfer in the sandbox (UnionPay does neither).
SPLIT_CHANNELS: Final = ("alipay", "wechat")


class SplitFaultMode(enum.StrEnum):
    RECEIVER_NOT_BOUND = "receiver_not_bound"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNVERIFIED_NAME = "unverified_name"
    PROCESSING_SUCCESS = "processing_success"
    PROCESSING_FAILURE = "processing_failure"


#: Which operations each mode applies to: a fault waits for one it applies to.
_APPLIES: Final = {
    SplitFaultMode.RECEIVER_NOT_BOUND: frozenset({"split"}),
    SplitFaultMode.INSUFFICIENT_BALANCE: frozenset({"transfer"}),
    SplitFaultMode.UNVERIFIED_NAME: frozenset({"transfer"}),
    SplitFaultMode.PROCESSING_SUCCESS: frozenset({"split", "transfer"}),
    SplitFaultMode.PROCESSING_FAILURE: frozenset({"split", "transfer"}),
}
_MODES: Final = frozenset(m.value for m in SplitFaultMode)


@dataclass(frozen=True)
class SplitFault:
    """One fault; ``count`` is how many operations it still affects (None: until cleared)."""

    channel: str
    mode: SplitFaultMode
    merchant_id: str | None = None
    count: int | None = None
    seconds: float = DEFAULT_PROCESSING_SECONDS
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "mode": self.mode.value,
            "merchant_id": self.merchant_id,
            "count": self.count,
            "seconds": self.seconds,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class Outcome:
    """How an accepted split or transfer ends: ``success`` (or not) at ``due_at``
    (None: at once)."""

    success: bool = True
    due_at: datetime | None = None

    def settled(self, now: datetime) -> bool:
        return self.due_at is None or now >= self.due_at


class SplitFaults:
    """The split and transfer faults; one per ``(channel, merchant)``, set again to replace."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: dict[tuple[str, str | None], SplitFault] = {}

    def set(
        self,
        channel: object,
        mode: object,
        *,
        merchant_id: object = None,
        count: object = None,
        seconds: object = None,
    ) -> SplitFault:
        if not isinstance(channel, str) or channel not in SPLIT_CHANNELS:
            raise InvalidInputError(f"channel must be one of {', '.join(SPLIT_CHANNELS)}")
        if not isinstance(mode, str) or mode not in _MODES:
            raise InvalidInputError(
                f"mode must be one of {', '.join(m.value for m in SplitFaultMode)}"
            )
        if merchant_id is not None and (not isinstance(merchant_id, str) or not merchant_id):
            raise InvalidInputError("merchant_id must be a non-empty string")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise InvalidInputError("count must be a positive integer")
        kind = SplitFaultMode(mode)
        if seconds is None:
            seconds = DEFAULT_PROCESSING_SECONDS
        elif kind not in (SplitFaultMode.PROCESSING_SUCCESS, SplitFaultMode.PROCESSING_FAILURE):
            raise InvalidInputError("seconds applies to the processing_* modes only")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= _MAX_PROCESSING_SECONDS
        ):
            raise InvalidInputError(f"seconds must be in [0, {_MAX_PROCESSING_SECONDS:g}]")
        fault = SplitFault(channel, kind, merchant_id, count, float(seconds))
        with self._lock:
            self._faults[(channel, merchant_id)] = fault
        return fault

    def clear(self, channel: str | None = None, *, merchant_id: str | None = None) -> int:
        with self._lock:
            keys = [
                k
                for k in self._faults
                if channel is None or (k[0] == channel and merchant_id in (None, k[1]))
            ]
            for key in keys:
                del self._faults[key]
            return len(keys)

    def list(self) -> list[SplitFault]:
        with self._lock:
            return list(self._faults.values())

    def take(self, channel: str, merchant_id: str, operation: str) -> SplitFault | None:
        """The fault for one ``operation`` (``split`` or ``transfer``), counted."""
        with self._lock:
            for key in ((channel, merchant_id), (channel, None)):
                fault = self._faults.get(key)
                if fault is None or operation not in _APPLIES[fault.mode]:
                    continue
                left = None if fault.count is None else fault.count - 1
                fault = replace(fault, count=left, hits=fault.hits + 1)
                if left == 0:
                    del self._faults[key]
                else:
                    self._faults[key] = fault
                return fault
            return None


class SplitBook:
    """Balances, known payees and faults of one sandbox (see the module)."""

    def __init__(self, lock: threading.RLock, time_factor: float) -> None:
        self._lock = lock
        self._time_factor = time_factor
        self._balances: dict[tuple[str, str], Money] = {}
        self._payees: dict[tuple[str, str], str] = {}
        self.faults = SplitFaults(lock)

    # -- balances ------------------------------------------------------------

    def balance(self, channel: str, merchant_id: str) -> Money:
        with self._lock:
            return self._balances.get((channel, merchant_id), DEFAULT_BALANCE)

    def set_balance(self, channel: str, merchant_id: str, amount: Money) -> Money:
        _channel(channel)
        if amount.currency != "CNY" or amount.minor < 0:
            raise InvalidInputError("a balance is a non-negative CNY amount")
        with self._lock:
            self._balances[(channel, merchant_id)] = amount
        return amount

    def draw(self, channel: str, merchant_id: str, amount: Money) -> bool:
        """Take ``amount`` from the balance; False (nothing taken) if it is too low."""
        with self._lock:
            have = self.balance(channel, merchant_id)
            if amount > have:
                return False
            self._balances[(channel, merchant_id)] = have - amount
            return True

    def credit(self, channel: str, merchant_id: str, amount: Money) -> None:
        with self._lock:
            self._balances[(channel, merchant_id)] = self.balance(channel, merchant_id) + amount

    # -- payees --------------------------------------------------------------

    def add_payee(self, channel: str, account: str, name: str) -> None:
        """Tell the sandbox an account's real name (checked on transfers and receivers)."""
        _channel(channel)
        if not account or not name:
            raise InvalidInputError("account and name are required")
        with self._lock:
            self._payees[(channel, account)] = name

    def payees(self, channel: str) -> list[str]:
        """The accounts of a channel whose name the sandbox knows (never the names)."""
        with self._lock:
            return sorted(a for (c, a) in self._payees if c == channel)

    def name_matches(self, channel: str, account: str, name: str | None) -> bool:
        """False when the sandbox knows the account's name and ``name`` differs."""
        if not name:
            return True
        with self._lock:
            known = self._payees.get((channel, account))
        return known is None or known == name

    # -- outcomes ------------------------------------------------------------

    def outcome(self, fault: SplitFault | None, now: datetime) -> Outcome:
        """How an accepted operation ends, given the fault it took (if any)."""
        if fault is None or fault.mode not in (
            SplitFaultMode.PROCESSING_SUCCESS,
            SplitFaultMode.PROCESSING_FAILURE,
        ):
            return Outcome()
        due = now + timedelta(seconds=fault.seconds / self._time_factor)
        return Outcome(success=fault.mode is SplitFaultMode.PROCESSING_SUCCESS, due_at=due)


def _channel(channel: str) -> None:
    if channel not in SPLIT_CHANNELS:
        raise InvalidInputError(f"channel must be one of {', '.join(SPLIT_CHANNELS)}")
