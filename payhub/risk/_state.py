"""Where window rules count: in this process, or in Redis for many processes.

A check records the payment in every window the policy counts and returns each
window's count and amount, this payment included, in one step: one lock in
memory, one Lua script (one round trip) in Redis. A payment recorded twice
(the same ``out_trade_no``, e.g. the buyer retries) is counted once.

Unpaid-order windows drop an order when it is settled (paid or closed:
:meth:`RiskState.settle`, called from a store transition hook).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from payhub.errors import ConfigurationError, NetworkError
from payhub.risk._rules import Counts, RiskContext, Window

if TYPE_CHECKING:
    import redis

__all__ = ["InMemoryRiskState", "RedisRiskState", "RiskState"]


class RiskState(Protocol):
    def record(self, ctx: RiskContext, windows: Sequence[Window], now_ms: int) -> Counts:
        """Add the payment to each window (those ``ctx`` has a key for); the counts."""
        ...

    def settle(self, out_trade_no: str) -> None:
        """The order is paid or closed: no longer counted as unpaid."""
        ...


class _Window:
    """One window's orders, oldest first, with their running total."""

    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self.total = 0

    def add(self, out_trade_no: str, at: int, amount: int, oldest: int) -> tuple[int, int]:
        orders = self.orders
        while orders:
            name, (first, first_amount) = next(iter(orders.items()))
            if first > oldest:
                break
            del orders[name]
            self.total -= first_amount
        if out_trade_no not in orders:
            orders[out_trade_no] = (at, amount)
            self.total += amount
        return len(orders), self.total

    def remove(self, out_trade_no: str) -> None:
        found = self.orders.pop(out_trade_no, None)
        if found is not None:
            self.total -= found[1]


class InMemoryRiskState:
    """Windows in this process (lost on restart; one process only). Each check
    costs a few dictionary operations per window, whatever the window holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str, int, bool], _Window] = {}
        #: out_trade_no -> the unpaid windows it is in
        self._unpaid: dict[str, list[_Window]] = {}

    def record(self, ctx: RiskContext, windows: Sequence[Window], now_ms: int) -> Counts:
        values: dict[Window, tuple[int, int]] = {}
        with self._lock:
            for window in windows:
                value = ctx.key(window.key)
                if value is None:
                    continue
                wid = (window.key, value, window.seconds, window.unpaid)
                held = self._windows.get(wid)
                if held is None:
                    held = self._windows[wid] = _Window()
                oldest = now_ms - window.seconds * 1000
                values[window] = held.add(ctx.out_trade_no, now_ms, ctx.amount_minor, oldest)
                if window.unpaid:
                    self._unpaid.setdefault(ctx.out_trade_no, []).append(held)
        return Counts(values)

    def settle(self, out_trade_no: str) -> None:
        with self._lock:
            for held in self._unpaid.pop(out_trade_no, []):
                held.remove(out_trade_no)


# KEYS: the window sorted sets, then the order's unpaid-index key.
# ARGV: now ms, member ("<out_trade_no>|<amount>"), then per window: ms, unpaid (0/1).
# Returns count, amount per window.
_RECORD_LUA: Final = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local result = {}
local unpaid = {}
local longest = 0
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local span = tonumber(ARGV[1 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, span)
  if ARGV[2 + 2 * i] == '1' then
    unpaid[#unpaid + 1] = key
    if span > longest then longest = span end
  end
  local members = redis.call('ZRANGE', key, 0, -1)
  local total = 0
  for _, m in ipairs(members) do
    total = total + (tonumber(string.match(m, '|(%d+)$')) or 0)
  end
  result[#result + 1] = #members
  result[#result + 1] = total
end
if #unpaid > 0 then
  redis.call('SET', KEYS[#KEYS], member .. ' ' .. table.concat(unpaid, ' '), 'PX', longest)
end
return result
"""

# KEYS: the order's unpaid-index key. Removes the order from its unpaid windows.
_SETTLE_LUA: Final = """
local index = redis.call('GET', KEYS[1])
if not index then return 0 end
local member = nil
local removed = 0
for word in string.gmatch(index, '%S+') do
  if member == nil then member = word else
    removed = removed + redis.call('ZREM', word, member)
  end
end
redis.call('DEL', KEYS[1])
return removed
"""


def _digest(value: str) -> str:
    """Keys never hold a buyer id, IP or device id in clear."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


class RedisRiskState:
    """Windows in Redis sorted sets (score: time ms), shared by every process
    with the same prefix. One Lua script per check: one round trip.

    Keys (``{P}`` the prefix as a Redis Cluster hash tag)::

        {P}:w:<key>:<seconds>:<sha256(value)>   a window (member: out_trade_no|amount)
        {P}:u:<seconds>:<sha256(ip)>           an unpaid-orders window
        {P}:o:<sha256(out_trade_no)>           which unpaid windows hold an order

    Each key expires with its window. Times are the callers' clocks (NTP).
    A Redis error is raised as :class:`NetworkError` (the engine then fails
    open or closed as configured).
    """

    def __init__(self, client: redis.Redis[Any], *, prefix: str = "payhub:risk") -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError("the Redis key prefix must be non-empty, without braces")
        import redis.exceptions  # noqa: PLC0415 - an optional dependency

        self._errors: tuple[type[Exception], ...] = (redis.exceptions.RedisError,)
        self._client = client
        self._owns_client = False
        self.prefix = prefix
        self._tag = "{" + prefix + "}"
        self._record = client.register_script(_RECORD_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "payhub:risk", **options: Any) -> RedisRiskState:
        """A state with its own client (0.5 s timeouts, no retry: a check is on the
        payment path, and recording twice is harmless but slow)."""
        try:
            import redis  # noqa: PLC0415 - an optional dependency
            from redis.backoff import NoBackoff  # noqa: PLC0415
            from redis.retry import Retry  # noqa: PLC0415
        except ImportError:  # pragma: no cover - depends on the installation
            raise ConfigurationError(
                "RedisRiskState needs redis-py: pip install 'payhub-cn[redis]'"
            ) from None
        options.setdefault("socket_timeout", 0.5)
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        state = cls(redis.Redis.from_url(url, **options), prefix=prefix)
        state._owns_client = True
        return state

    def __repr__(self) -> str:
        return f"<RedisRiskState prefix={self.prefix!r}>"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _key(self, window: Window, value: str) -> str:
        if window.unpaid:
            return f"{self._tag}:u:{window.seconds}:{_digest(value)}"
        return f"{self._tag}:w:{window.key}:{window.seconds}:{_digest(value)}"

    def _order_key(self, out_trade_no: str) -> str:
        return f"{self._tag}:o:{_digest(out_trade_no)}"

    def record(self, ctx: RiskContext, windows: Sequence[Window], now_ms: int) -> Counts:
        keyed = [(w, ctx.key(w.key)) for w in windows]
        present = [(w, v) for w, v in keyed if v is not None]
        if not present:
            return Counts()
        keys = [self._key(w, v) for w, v in present] + [self._order_key(ctx.out_trade_no)]
        args: list[Any] = [now_ms, f"{ctx.out_trade_no}|{ctx.amount_minor}"]
        for window, _ in present:
            args += [window.seconds * 1000, 1 if window.unpaid else 0]
        try:
            raw = self._record(keys=keys, args=args)
        except self._errors as exc:
            raise NetworkError(f"risk state {self.prefix!r}: {type(exc).__name__}") from exc
        values = {
            w: (int(raw[2 * i]), int(raw[2 * i + 1])) for i, (w, _) in enumerate(present)
        }
        return Counts(values)

    def settle(self, out_trade_no: str) -> None:
        try:
            self._settle(keys=[self._order_key(out_trade_no)], args=[])
        except self._errors as exc:
            raise NetworkError(f"risk state {self.prefix!r}: {type(exc).__name__}") from exc
