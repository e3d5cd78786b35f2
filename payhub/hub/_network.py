"""The HTTP boundary both hubs share: default timeouts, transport errors
translated into payhub's, and per-attempt time budgets."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx

from payhub.errors import ChannelTimeout, NetworkError

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@contextlib.contextmanager
def map_network_errors(channel: str) -> Iterator[None]:
    """Translate httpx's transport errors into payhub's, at the boundary."""
    try:
        yield
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # The request never left: no trade can exist at the channel.
        raise NetworkError(f"{channel}: could not connect ({type(exc).__name__})") from exc
    except httpx.TimeoutException as exc:
        raise ChannelTimeout(
            f"{channel}: no answer in time ({type(exc).__name__}); the trade may exist"
        ) from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"{channel}: request failed ({type(exc).__name__})") from exc


def deadline(budget: float | None) -> float | None:
    """When an attempt of ``budget`` seconds started now ends (:func:`time.monotonic`)."""
    return None if budget is None else time.monotonic() + budget


def cap_timeout(request: httpx.Request, default: httpx.Timeout, ends_at: float | None) -> None:
    """Cap each of the request's timeouts (its own, else the client's) to what is
    left of its attempt, which ends at ``ends_at`` (None: no cap).

    A request sent with no time left gets 1 ms: httpx then fails it the usual
    way (a connect timeout: never sent; a read timeout: the trade may exist).
    """
    if ends_at is None:
        return
    left = max(ends_at - time.monotonic(), 0.001)
    timeouts = request.extensions.get("timeout") or default.as_dict()
    request.extensions = {
        **request.extensions,
        "timeout": {
            phase: left if limit is None else min(limit, left) for phase, limit in timeouts.items()
        },
    }
