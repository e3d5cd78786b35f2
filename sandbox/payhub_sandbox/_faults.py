"""Gateway faults: make a channel's gateway fail on purpose, for failover tests.

A fault belongs to a channel (``alipay``, ``wechat``, ``unionpay``) and
optionally to one merchant of it (an Alipay ``app_id``, a WeChat ``mchid``, a
UnionPay ``merId``); it lasts for the next ``count`` requests, for
``duration`` seconds (real time: an outage), or until cleared. The modes:

========================  ====================================================
``down``                  503 with an empty body; with ``close`` and a live
                          server, the connection is dropped without an answer
``slow``                  wait ``seconds`` (real time, whatever the clock),
                          then answer normally: the work is done, late
``system_error``          the channel's own "system busy" answer (Alipay:
                          signed ``20000 isp.unknow-error`` or ``40004
                          ACQ.SYSTEM_ERROR``)
``html_error``            502 with an nginx error page (a proxy in front of
                          the channel failing)
========================  ====================================================

This module holds the state (:class:`GatewayFaults`, thread-safe, no Flask);
:mod:`payhub_sandbox._fault_views` applies it to requests and serves the
control API.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from payhub_sandbox._errors import InvalidInputError

__all__ = [
    "GATEWAY_PATHS",
    "MAX_DURATION",
    "MAX_SLOW_SECONDS",
    "SYSTEM_ERROR_CODES",
    "FaultMode",
    "GatewayFault",
    "GatewayFaults",
]

#: Where each channel's gateway lives: a request whose path starts with it is
#: that channel's. (Alipay's is one path; the others are prefixes.)
GATEWAY_PATHS: Final = MappingProxyType(
    {"alipay": "/gateway.do", "wechat": "/v3/", "unionpay": "/gateway/api/"}
)

#: The "system busy" answers each channel can give (``code``), the default first.
SYSTEM_ERROR_CODES: Final = MappingProxyType(
    {
        "alipay": ("20000", "40004"),  # isp.unknow-error / ACQ.SYSTEM_ERROR
        "wechat": ("SYSTEM_ERROR",),  # HTTP 500
        "unionpay": ("03", "01"),  # 交易通讯超时 / 交易失败, 系统繁忙
    }
)

#: The longest a ``slow`` fault may hold a request (seconds).
MAX_SLOW_SECONDS: Final = 120.0
#: The longest a fault set with a ``duration`` may last (seconds): a day.
MAX_DURATION: Final = 86400.0


class FaultMode(enum.StrEnum):
    DOWN = "down"
    SLOW = "slow"
    SYSTEM_ERROR = "system_error"
    HTML_ERROR = "html_error"


@dataclass(frozen=True)
class GatewayFault:
    """One fault; ``count`` is how many requests it still fails (None: until cleared)."""

    channel: str
    mode: FaultMode
    app_id: str | None = None
    seconds: float | None = None
    count: int | None = None
    close: bool = False
    code: str | None = None
    #: requests this fault has failed (or slowed) so far
    hits: int = 0
    #: when it ends (``time.monotonic()``), for a fault set with a ``duration``
    until: float | None = None

    def expired(self, now: float) -> bool:
        return self.until is not None and now >= self.until

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "mode": self.mode.value,
            "app_id": self.app_id,
            "seconds": self.seconds,
            "count": self.count,
            "close": self.close,
            "code": self.code,
            "hits": self.hits,
            "expires_in": None
            if self.until is None
            else round(max(0.0, self.until - time.monotonic()), 3),
        }


_Key = tuple[str, str | None]
_MODES: Final = frozenset(mode.value for mode in FaultMode)


class GatewayFaults:
    """The gateway faults of one sandbox; every method is thread-safe.

    One fault per ``(channel, app_id)``: setting one again replaces it. A
    request gets its merchant's fault if there is one, else its channel's.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[_Key, GatewayFault] = {}
        # Set when a fault is cleared or replaced: wakes the requests it is slowing.
        self._wake: dict[_Key, threading.Event] = {}

    def __bool__(self) -> bool:
        return bool(self._faults)

    def set(
        self,
        channel: str,
        mode: FaultMode | str,
        *,
        app_id: str | None = None,
        seconds: float | None = None,
        count: int | None = None,
        close: bool = False,
        code: str | None = None,
        duration: float | None = None,
    ) -> GatewayFault:
        """Make ``channel``'s gateway (one merchant's, with ``app_id``) fail; see the module.
        ``duration``: for that many seconds (real time) from now, then it is gone."""
        fault = _checked(
            channel, mode, app_id=app_id, seconds=seconds, count=count, close=close, code=code
        )
        if duration is not None:
            if (
                isinstance(duration, bool)
                or not isinstance(duration, int | float)
                or not math.isfinite(duration)
                or not 0 < duration <= MAX_DURATION
            ):
                raise InvalidInputError(f"duration must be in (0, {MAX_DURATION:g}] seconds")
            fault = replace(fault, until=time.monotonic() + float(duration))
        key = (fault.channel, fault.app_id)
        with self._lock:
            self._faults[key] = fault
            old = self._wake.pop(key, None)
            self._wake[key] = threading.Event()
        if old is not None:
            old.set()
        return fault

    def clear(self, channel: str | None = None, *, app_id: str | None = None) -> int:
        """Clear every fault, a channel's, or one merchant's; how many were cleared.

        Requests a cleared ``slow`` fault is holding are answered at once.
        """
        if channel is None and app_id is not None:
            raise InvalidInputError("app_id needs channel")
        with self._lock:
            keys = [
                key
                for key in self._faults
                if channel is None or (key[0] == channel and (app_id is None or key[1] == app_id))
            ]
            events = [self._wake.pop(key) for key in keys]
            for key in keys:
                del self._faults[key]
        for event in events:
            event.set()
        return len(keys)

    def list(self) -> list[GatewayFault]:
        with self._lock:
            self._prune(time.monotonic())
            return list(self._faults.values())

    def _prune(self, now: float) -> None:
        """Drop the faults whose duration is over (the lock is held)."""
        for key in [k for k, f in self._faults.items() if f.expired(now)]:
            del self._faults[key]
            self._wake.pop(key).set()

    def take(self, channel: str, app_id: str | None) -> tuple[GatewayFault, threading.Event] | None:
        """The fault for one request, counted; None if it passes.

        A fault whose ``count`` reaches 0 is removed (a ``slow`` request it
        holds still waits its time).
        """
        with self._lock:
            self._prune(time.monotonic())
            key: _Key = (channel, app_id)
            fault = self._faults.get(key) if app_id is not None else None
            if fault is None:
                key = (channel, None)
                fault = self._faults.get(key)
            if fault is None:
                return None
            wake = self._wake[key]
            left = None if fault.count is None else fault.count - 1
            fault = replace(fault, count=left, hits=fault.hits + 1)
            if left == 0:
                del self._faults[key]
                del self._wake[key]
            else:
                self._faults[key] = fault
            return fault, wake


def _checked(
    channel: object,
    mode: object,
    *,
    app_id: object,
    seconds: object,
    count: object,
    close: object,
    code: object,
) -> GatewayFault:
    if not isinstance(channel, str) or channel not in GATEWAY_PATHS:
        raise InvalidInputError(f"channel must be one of {', '.join(GATEWAY_PATHS)}")
    if not isinstance(mode, str) or mode not in _MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(m.value for m in FaultMode)}")
    kind = FaultMode(mode)
    if app_id is not None and (not isinstance(app_id, str) or not app_id):
        raise InvalidInputError("app_id must be a non-empty string")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise InvalidInputError("count must be a positive integer")
    if not isinstance(close, bool):
        raise InvalidInputError("close must be true or false")
    if close and kind is not FaultMode.DOWN:
        raise InvalidInputError("close applies to the 'down' mode only")
    if kind is FaultMode.SLOW:
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 < seconds <= MAX_SLOW_SECONDS
        ):
            raise InvalidInputError(f"a slow fault needs seconds in (0, {MAX_SLOW_SECONDS:g}]")
        seconds = float(seconds)
    elif seconds is not None:
        raise InvalidInputError("seconds applies to the 'slow' mode only")
    if kind is FaultMode.SYSTEM_ERROR:
        codes = SYSTEM_ERROR_CODES[channel]
        if code is None:
            code = codes[0]
        elif code not in codes:
            raise InvalidInputError(
                f"{channel} system_error code must be one of {', '.join(codes)}"
            )
    elif code is not None:
        raise InvalidInputError("code applies to the 'system_error' mode only")
    return GatewayFault(
        channel=channel,
        mode=kind,
        app_id=app_id,
        seconds=seconds,
        count=count,
        close=close,
        code=code,
    )
