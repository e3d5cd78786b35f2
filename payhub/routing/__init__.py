"""Routing: which channel accounts may take a payment, in which order, and their health.

>>> from payhub.routing import ChannelAccountPolicy, Router
>>> router = Router({"alipay-a": ChannelAccountPolicy(priority=1)})
>>> decision = router.route(request, hub.channels.values())  # doctest: +SKIP
>>> for candidate in router.attempts(decision, FailoverPolicy()):  # doctest: +SKIP
...     ...  # try candidate.channel, then router.record(candidate.name, outcome)

See ``docs/routing.md``. :class:`RedisHealthStore` needs ``payhub-cn[redis]``
only when it is constructed.
"""

from payhub.routing._health import (
    AccountHealth,
    CircuitState,
    HealthStore,
    InMemoryHealthStore,
    Outcome,
    VolumePeriod,
)
from payhub.routing._policy import (
    BreakerConfig,
    ChannelAccountPolicy,
    FailoverPolicy,
    RoutingRule,
    RuleAction,
    Strategy,
)
from payhub.routing._redis import RedisHealthStore
from payhub.routing._router import Candidate, Router, RoutingDecision

__all__ = [
    "AccountHealth",
    "BreakerConfig",
    "Candidate",
    "ChannelAccountPolicy",
    "CircuitState",
    "FailoverPolicy",
    "HealthStore",
    "InMemoryHealthStore",
    "Outcome",
    "RedisHealthStore",
    "Router",
    "RoutingDecision",
    "RoutingRule",
    "RuleAction",
    "Strategy",
    "VolumePeriod",
]

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__  # tracebacks and reprs read payhub.routing.Router
del _name, _value
