"""The verified (or not) browser return handed to the shop's return handler."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from payhub import InvalidRequestError, PayHub, PayhubError, ReturnInfo

__all__ = ["ReturnOutcome", "verify_return"]


@dataclass(frozen=True)
class ReturnOutcome:
    """A buyer's browser return to the shop, verified (or not).

    It is never proof of payment: show "we are confirming your payment" and
    deliver on the notification (or a query), not on this.
    """

    channel: str
    #: the parameters the browser brought (query string, or form for a POST)
    params: Mapping[str, str]
    #: the verified return, or None if it did not verify
    info: ReturnInfo | None = None
    #: why it did not verify
    error: PayhubError | None = None

    @property
    def verified(self) -> bool:
        return self.info is not None


class _MultiValued(Protocol):
    """A QueryDict."""

    def lists(self) -> Iterable[tuple[str, list[str]]]: ...


def verify_return(hub: PayHub, channel: str, fields: _MultiValued) -> ReturnOutcome:
    """Verify a browser return; a repeated parameter is refused (which one was signed?)."""
    lists = list(fields.lists())
    params = {key: values[0] for key, values in lists}
    try:
        repeated = sorted(key for key, values in lists if len(values) > 1)
        if repeated:
            raise InvalidRequestError(f"{channel}: repeated return parameters {repeated}")
        info = hub.verify_return(channel, params)
    except PayhubError as exc:
        return ReturnOutcome(channel=channel, params=params, error=exc)
    return ReturnOutcome(channel=channel, params=params, info=info)
