"""A health store in Redis (``payhub-cn[redis]``): one view for many processes and machines.

Every operation is one Lua script, so each transition is atomic and each
call is one round trip; :meth:`RedisHealthStore.read` answers for all the
accounts of a payment at once, with one ``HMGET`` and one ``MGET`` on the
server whatever their number (it is on the payment hot path). Keys (``P`` is
the prefix; the braces make it a Redis Cluster hash tag, so every key of one
store lives in one slot and a script may touch them all)::

    {P}:h              hash of what routing reads, per account <a>:
                         o:<a>               circuit opened at (ms; absent: closed)
                         c:<a>               consecutive failures
                         dv:<cur>:<day>:<a>  volume (minor units) of the
                                             Asia/Shanghai day <day> ...
                         mv:<cur>:<month>:<a> ... and of the month
                         d:<cur>:<a>, m:<cur>:<a>  the day and month counted
                                             now (an older one is deleted)
    {P}:p:<a>          the half-open probe lease: SET NX PX, value = lease end (ms)
    {P}:w:<a>          the sliding window: s<bucket>, f<bucket> counts

The window expires two windows after its last outcome, the probe lease with
its lease, the hash ``idle_ttl`` after the last write (40 days by default,
longer than a month, for the monthly volume).

A Redis error is raised as :class:`~payhub.errors.NetworkError`; the router
then routes without health (``Router(fail_open=True)``, the default).

Times are the callers' clocks (ms since the epoch), passed to the scripts,
so the processes sharing a store need synchronised clocks (NTP); the probe
lease also carries a Redis expiry as a safety net.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from payhub.errors import ConfigurationError, NetworkError
from payhub.money import Money
from payhub.routing._health import AccountHealth, CircuitState, Outcome, VolumePeriod
from payhub.routing._policy import BreakerConfig

if TYPE_CHECKING:
    import redis

__all__ = ["RedisHealthStore"]

# Shared by the scripts.
_COMMON_LUA: Final = """
local function state_of(opened, now, cool_down)
  if not opened then return 'closed' end
  if now >= opened + cool_down then return 'half_open' end
  return 'open'
end
-- The window hash holds only buckets with outcomes (record prunes old ones),
-- so reading it whole is cheaper than naming every bucket of the window.
local function window(key, first, last)
  local all = redis.call('HGETALL', key)
  local successes, failures = 0, 0
  for i = 1, #all, 2 do
    local field = all[i]
    local bucket = tonumber(string.sub(field, 2))
    if bucket and bucket >= first and bucket <= last then
      local kind = string.sub(field, 1, 1)
      if kind == 's' then
        successes = successes + (tonumber(all[i + 1]) or 0)
      elseif kind == 'f' then
        failures = failures + (tonumber(all[i + 1]) or 0)
      end
    end
  end
  return successes, failures
end
local function count_volume(hot, kind, currency, period, name, volume)
  local current = kind .. ':' .. currency .. ':' .. name
  local counted = redis.call('HGET', hot, current)
  if counted ~= period then
    if counted then
      redis.call('HDEL', hot, kind .. 'v:' .. currency .. ':' .. counted .. ':' .. name)
    end
    redis.call('HSET', hot, current, period)
  end
  redis.call('HINCRBY', hot, kind .. 'v:' .. currency .. ':' .. period .. ':' .. name, volume)
end
local function add_volume(hot, name, currency, day, month, volume)
  count_volume(hot, 'd', currency, day, name, volume)
  count_volume(hot, 'm', currency, month, name, volume)
end
"""

# KEYS[1]: the hash. The probe and window keys are built here from the account
# names (same hash tag, same slot), so a read of ten accounts sends ten short
# names, not thirty keys.
# ARGV: tag, now, bucket_ms, buckets, count the window (1/0), currency, day,
#       month, account names...
# Returns one string of 7 comma-separated integers per account: opened at
# (-1: closed), consecutive failures, probe lease end (0: none), day volume,
# month volume, window successes, window failures. Stored digits are returned
# as they are, so no integer goes through a Lua double.
_READ_LUA: Final = (
    _COMMON_LUA
    + """
local hot, tag, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local bucket_ms, buckets, want = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local day = 'dv:' .. ARGV[6] .. ':' .. ARGV[7] .. ':'
local month = 'mv:' .. ARGV[6] .. ':' .. ARGV[8] .. ':'
local probe = tag .. ':p:'
local fields, leases = {}, {}
for i = 9, #ARGV do
  local name = ARGV[i]
  local j = #fields
  fields[j + 1] = 'o:' .. name
  fields[j + 2] = 'c:' .. name
  fields[j + 3] = day .. name
  fields[j + 4] = month .. name
  leases[#leases + 1] = probe .. name
end
local values = redis.call('HMGET', hot, unpack(fields))
local probes = redis.call('MGET', unpack(leases))
local current = math.floor(now / bucket_ms)
local out = {}
for k = 1, #leases do
  local j = (k - 1) * 4
  local successes, failures = '0', '0'
  if want then
    local s, f = window(tag .. ':w:' .. ARGV[k + 8], current - buckets + 1, current)
    successes, failures = string.format('%d', s), string.format('%d', f)
  end
  out[#out + 1] = values[j + 1] or '-1'
  out[#out + 1] = values[j + 2] or '0'
  out[#out + 1] = probes[k] or '0'
  out[#out + 1] = values[j + 3] or '0'
  out[#out + 1] = values[j + 4] or '0'
  out[#out + 1] = successes
  out[#out + 1] = failures
end
return table.concat(out, ',')
"""
)

# KEYS: hash, window, probe lease.
# ARGV: name, now, outcome, volume, currency, day, month, consecutive_failures,
#       failure_rate, min_samples, bucket_ms, buckets, cool_down_ms, idle_ttl_ms.
# Returns {state before, state after}. Mirrors InMemoryHealthStore.record.
_RECORD_LUA: Final = (
    _COMMON_LUA
    + """
local hot, w, p = KEYS[1], KEYS[2], KEYS[3]
local name, now, outcome = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local o, c = 'o:' .. name, 'c:' .. name
local bucket_ms, buckets = tonumber(ARGV[11]), tonumber(ARGV[12])
local current = math.floor(now / bucket_ms)
local first = current - buckets + 1
local before = state_of(tonumber(redis.call('HGET', hot, o)), now, tonumber(ARGV[13]))
local after = before
if outcome == 'success' or outcome == 'business_error' then
  if before == 'half_open' then
    -- The channel answered: close, and start counting afresh.
    redis.call('HDEL', hot, o)
    redis.call('DEL', w, p)
    after = 'closed'
  end
  redis.call('HSET', hot, c, 0)
  if outcome == 'success' then
    redis.call('HINCRBY', w, 's' .. string.format('%d', current), 1)
    if ARGV[4] ~= '0' then
      add_volume(hot, name, ARGV[5], ARGV[6], ARGV[7], ARGV[4])
    end
  end
else
  redis.call('HINCRBY', w, 'f' .. string.format('%d', current), 1)
  local consecutive = redis.call('HINCRBY', hot, c, 1)
  if before == 'half_open' then
    redis.call('HSET', hot, o, ARGV[2])
    redis.call('DEL', p)
    after = 'open'
  elseif before == 'closed' then
    local open = consecutive >= tonumber(ARGV[8])
    if not open then
      local successes, failures = window(w, first, current)
      local total = successes + failures
      open = total >= tonumber(ARGV[10]) and failures / total > tonumber(ARGV[9])
    end
    if open then
      redis.call('HSET', hot, o, ARGV[2])
      after = 'open'
    end
  end
end
for _, field in ipairs(redis.call('HKEYS', w)) do
  if tonumber(string.sub(field, 2)) < first then redis.call('HDEL', w, field) end
end
redis.call('PEXPIRE', w, 2 * bucket_ms * buckets)
redis.call('PEXPIRE', hot, ARGV[14])
return {before, after}
"""
)

# KEYS: hash, probe lease. ARGV: name, now, cool_down_ms, probe_lease_ms.
# The lease holds its end time; an ended lease is replaced even if Redis has
# not expired it yet (the callers' clock decides, as everywhere else).
_ACQUIRE_LUA: Final = (
    _COMMON_LUA
    + """
local now = tonumber(ARGV[2])
local opened = tonumber(redis.call('HGET', KEYS[1], 'o:' .. ARGV[1]))
if state_of(opened, now, tonumber(ARGV[3])) ~= 'half_open' then
  return 0
end
local holder = tonumber(redis.call('GET', KEYS[2]))
if holder then
  if holder > now then return 0 end
  redis.call('DEL', KEYS[2])
end
local lease_end = string.format('%d', now + tonumber(ARGV[4]))
if redis.call('SET', KEYS[2], lease_end, 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"""
)

# KEYS: hash. ARGV: name, currency, day, month, volume, idle_ttl_ms.
_ADD_VOLUME_LUA: Final = (
    _COMMON_LUA
    + """
add_volume(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""
)

# KEYS: hash, window, probe lease. ARGV: name.
_RESET_LUA: Final = """
redis.call('HDEL', KEYS[1], 'o:' .. ARGV[1], 'c:' .. ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""


class RedisHealthStore:
    """Breaker state and volumes in Redis, shared by every router that uses the same prefix.

    >>> store = RedisHealthStore.from_url("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> router = Router(policies, health=store)  # doctest: +SKIP

    Pass a ``redis.Redis`` client you own, or use :meth:`from_url` and
    :meth:`close` (or ``with``). ``prefix`` separates deployments (and tests);
    ``idle_ttl`` is how long the store's state outlives its last write
    (keep it above a month: the monthly volume is in it).
    """

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        prefix: str = "payhub:routing",
        idle_ttl: timedelta = timedelta(days=40),
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError("the Redis key prefix must be non-empty, without braces")
        import redis.exceptions  # noqa: PLC0415 - an optional dependency, here when a client is

        self._errors: tuple[type[Exception], ...] = (redis.exceptions.RedisError,)
        self._client = client
        self._owns_client = False
        self.prefix = prefix
        self._tag = "{" + prefix + "}"
        self._hash = self._tag + ":h"
        self._idle_ttl_ms = str(int(idle_ttl.total_seconds() * 1000))
        self._read = client.register_script(_READ_LUA)
        self._record = client.register_script(_RECORD_LUA)
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._add_volume = client.register_script(_ADD_VOLUME_LUA)
        self._reset = client.register_script(_RESET_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "payhub:routing",
        idle_ttl: timedelta = timedelta(days=40),
        **client_options: Any,
    ) -> RedisHealthStore:
        """A store with its own client (closed by :meth:`close`).

        The client answers within ``socket_timeout`` (default 0.5 s: the read is
        on the payment hot path) and does not retry (default ``retry``: none),
        since recording an outcome twice would count it twice. Pass other
        ``redis.Redis`` options as keywords.
        """
        try:
            import redis  # noqa: PLC0415 - an optional dependency, loaded when asked for
            from redis.backoff import NoBackoff  # noqa: PLC0415
            from redis.retry import Retry  # noqa: PLC0415
        except ImportError:  # pragma: no cover - depends on the installation
            raise ConfigurationError(
                "RedisHealthStore needs redis-py: pip install 'payhub-cn[redis]'"
            ) from None
        client_options.setdefault("socket_timeout", 0.5)
        client_options.setdefault("socket_connect_timeout", 0.5)
        client_options.setdefault("retry", Retry(NoBackoff(), 0))
        store = cls(redis.Redis.from_url(url, **client_options), prefix=prefix, idle_ttl=idle_ttl)
        store._owns_client = True
        return store

    def __repr__(self) -> str:
        return f"<RedisHealthStore prefix={self.prefix!r}>"

    def close(self) -> None:
        """Close the client if this store made it (:meth:`from_url`)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the store protocol -----------------------------------------------------

    def read(
        self,
        names: Sequence[str],
        *,
        now: int,
        breaker: BreakerConfig,
        currency: str,
        period: VolumePeriod,
        window: bool = False,
    ) -> list[AccountHealth]:
        if not names:
            return []
        args = [
            self._tag,
            now,
            breaker.bucket_ms,
            breaker.buckets,
            1 if window else 0,
            currency,
            period.day,
            period.month,
            *names,
        ]
        try:
            reply: bytes | str = self._read(keys=(self._hash,), args=args)
        except self._errors as exc:
            raise _unavailable(exc) from exc
        text = reply.decode() if isinstance(reply, bytes) else reply
        values = list(map(int, text.split(",")))
        return [
            AccountHealth(
                None if values[i] < 0 else values[i],
                values[i + 2],
                values[i + 1],
                values[i + 5],
                values[i + 6],
                values[i + 3],
                values[i + 4],
            )
            for i in range(0, len(values), 7)
        ]

    def record(
        self,
        name: str,
        outcome: Outcome,
        *,
        now: int,
        breaker: BreakerConfig,
        period: VolumePeriod,
        volume: Money | None = None,
    ) -> tuple[CircuitState, CircuitState]:
        counted = volume is not None and outcome is Outcome.SUCCESS and volume.minor > 0
        args = (
            name,
            now,
            outcome.value,
            volume.minor if counted and volume is not None else 0,
            volume.currency if volume is not None else "",
            period.day,
            period.month,
            breaker.consecutive_failures,
            repr(breaker.failure_rate),
            breaker.min_samples,
            breaker.bucket_ms,
            breaker.buckets,
            breaker.cool_down_ms,
            self._idle_ttl_ms,
        )
        try:
            before, after = self._record(keys=self._keys(name), args=args)
        except self._errors as exc:
            raise _unavailable(exc) from exc
        return CircuitState(_text(before)), CircuitState(_text(after))

    def acquire_probe(self, name: str, *, now: int, breaker: BreakerConfig) -> bool:
        keys = (self._hash, f"{self._tag}:p:{name}")
        args = (name, now, breaker.cool_down_ms, breaker.probe_lease_ms)
        try:
            return bool(self._acquire(keys=keys, args=args))
        except self._errors as exc:
            raise _unavailable(exc) from exc

    def add_volume(self, name: str, amount: Money, *, period: VolumePeriod) -> None:
        if amount.minor <= 0:
            return
        args = (name, amount.currency, period.day, period.month, amount.minor, self._idle_ttl_ms)
        try:
            self._add_volume(keys=(self._hash,), args=args)
        except self._errors as exc:
            raise _unavailable(exc) from exc

    def reset(self, name: str) -> None:
        try:
            self._reset(keys=self._keys(name), args=(name,))
        except self._errors as exc:
            raise _unavailable(exc) from exc

    def _keys(self, name: str) -> tuple[str, str, str]:
        """The hash, the account's window and its probe lease."""
        return (self._hash, f"{self._tag}:w:{name}", f"{self._tag}:p:{name}")


def _unavailable(exc: Exception) -> NetworkError:
    return NetworkError(f"the Redis health store is unavailable ({type(exc).__name__}: {exc})")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
