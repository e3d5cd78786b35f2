""":class:`RiskEngine`: a policy, a state and a clock; what ``hub.pay`` asks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from payhub.config import resolve_secret, validated
from payhub.errors import ConfigurationError, NetworkError
from payhub.models import PaymentRequest
from payhub.risk._rules import Counts, RiskContext, RiskPolicy, RiskVerdict, evaluate
from payhub.risk._state import InMemoryRiskState, RedisRiskState, RiskState

__all__ = ["RiskEngine"]

logger = logging.getLogger("payhub.risk")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _StateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``{"$env": "REDIS_URL"}`` or a URL; absent: in this process
    redis_url: Any = None
    prefix: str = Field(default="payhub:risk", min_length=1)


class RiskEngine:
    """Evaluates :class:`RiskPolicy` for each payment with the counts of its state.

    ``fail_open`` (default True): when the state cannot be reached, window
    rules are skipped (logged) and the other rules still apply; False raises
    the :class:`NetworkError` instead, so no payment goes unchecked.
    """

    def __init__(
        self,
        policy: RiskPolicy,
        state: RiskState | None = None,
        *,
        fail_open: bool = True,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.policy = policy
        self.state: RiskState = state if state is not None else InMemoryRiskState()
        self.fail_open = fail_open
        self._clock_ms = clock_ms
        self._unpaid = any(w.unpaid for w in policy.windows)
        #: an enforced review rule: the hub needs a store for the queue
        self.holds_for_review = any(
            r.action.value == "review" and r.mode == "enforce" for r in policy.rules
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RiskEngine:
        """``{"rules": [...], "state": {"redis_url": ..., "prefix": ...}, "fail_open": true}``."""
        if not isinstance(config, Mapping):
            raise ConfigurationError("risk: expected a mapping")
        rest = dict(config)
        state_cfg = validated(_StateConfig, rest.pop("state", None) or {}, "risk.state")
        fail_open = rest.pop("fail_open", True)
        if not isinstance(fail_open, bool):
            raise ConfigurationError("risk.fail_open: expected true or false")
        policy = RiskPolicy.from_config(rest)
        state: RiskState | None = None
        if state_cfg.redis_url is not None:
            url = resolve_secret(state_cfg.redis_url, "risk.state.redis_url").get_text()
            state = RedisRiskState.from_url(url, prefix=state_cfg.prefix)
        return cls(policy, state, fail_open=fail_open)

    def close(self) -> None:
        close = getattr(self.state, "close", None)
        if close is not None:
            close()

    def check(self, request: PaymentRequest) -> RiskVerdict:
        """The verdict for ``request`` (records it in the windows; may block on Redis)."""
        ctx = RiskContext.of(request)
        counts = Counts()
        if self.policy.windows:
            try:
                counts = self.state.record(ctx, self.policy.windows, self._clock_ms())
            except NetworkError as exc:
                if not self.fail_open:
                    raise
                logger.warning("risk: window rules skipped for %s: %s", ctx.out_trade_no, exc)
        return evaluate(self.policy, ctx, counts)

    def settle(self, out_trade_no: str) -> None:
        """The order is paid or closed (unpaid-order rules stop counting it); never raises."""
        if not self._unpaid:
            return
        try:
            self.state.settle(out_trade_no)
        except NetworkError as exc:
            logger.warning("risk: could not settle %s: %s", out_trade_no, exc)
