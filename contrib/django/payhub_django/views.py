"""The notification and browser-return views.

Mount them with ``include("payhub_django.urls")``, or route to them yourself;
``browser_return`` takes an ``on_return`` keyword from the URLconf::

    path("pay/back/<str:channel>/", views.browser_return, {"on_return": shop_return})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import (  # type: ignore[import-untyped]
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
)
from django.utils.module_loading import import_string  # type: ignore[import-untyped]
from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped]

from payhub import Ack, ConfigurationError, PayHub, UnknownChannelError, web
from payhub_django._hub import get_hub
from payhub_django._return import ReturnOutcome, verify_return

__all__ = [
    "ReturnHandler",
    "ack_response",
    "browser_return",
    "default_return_handler",
    "max_notification_bytes",
    "notify",
    "raw_headers",
    "to_response",
]

#: ``handler(request, outcome)`` answers a browser return.
ReturnHandler = Callable[[HttpRequest, ReturnOutcome], HttpResponse]

V = TypeVar("V", bound=Callable[..., Any])


def _csrf_exempt(view: V) -> V:
    """``csrf_exempt``, typed (Django ships no type hints)."""
    exempt: V = csrf_exempt(view)
    return exempt


@_csrf_exempt
def notify(request: HttpRequest, channel: str) -> HttpResponse:
    """A channel's notification, answered with the channel's exact acknowledgement.

    CSRF-exempt (a channel has no token; the signature is the proof). A GET
    (EPay's notifications) carries its signed form in the query string. The body
    is read from the request stream, byte for byte (never form-parsed first),
    and only up to ``settings.PAYHUB_MAX_NOTIFICATION_BYTES`` (default 64 KiB):
    a larger one is answered 413 before it is read.
    """
    if request.method == "GET":  # EPay and its clones notify with a signed query string
        # WSGI hands the query string over as ISO-8859-1 text: encoding it back gives the bytes.
        query = request.META.get("QUERY_STRING", "").encode("latin-1", "surrogateescape")
        return to_response(
            web.handle_query_notification(
                _hub_with(channel),
                channel,
                request.headers.items(),
                query,
                limit=max_notification_bytes(),
            )
        )
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    hub = _hub_with(channel)
    answer = web.handle_notification(
        hub,
        channel,
        request.headers.items(),
        request.META.get("CONTENT_LENGTH"),
        request.read,
        limit=max_notification_bytes(),
    )
    return to_response(answer)


def max_notification_bytes() -> int:
    """``settings.PAYHUB_MAX_NOTIFICATION_BYTES``, checked (default 64 KiB).

    Raises ImproperlyConfigured for anything but a number of bytes from 1 to 16 MiB
    (also at start-up: the app config checks it in ``ready()``).
    """
    try:
        return web.check_max_notification_bytes(
            getattr(settings, "PAYHUB_MAX_NOTIFICATION_BYTES", None),
            name="settings.PAYHUB_MAX_NOTIFICATION_BYTES",
        )
    except ConfigurationError as exc:
        raise ImproperlyConfigured(exc.message) from exc


@_csrf_exempt
def browser_return(
    request: HttpRequest, channel: str, on_return: ReturnHandler | str | None = None
) -> HttpResponse:
    """The buyer's browser return: verified, never credited, answered by the handler.

    The handler is ``on_return`` (from the URLconf), else the callable or
    dotted path in ``settings.PAYHUB_RETURN_HANDLER``, else
    :func:`default_return_handler`. CSRF-exempt because UnionPay returns the
    buyer with a cross-site form POST; it changes no state.
    """
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    hub = _hub_with(channel)
    fields = request.GET if request.method == "GET" else request.POST
    outcome = verify_return(hub, channel, fields)
    return _return_handler(on_return)(request, outcome)


def default_return_handler(request: HttpRequest, outcome: ReturnOutcome) -> HttpResponse:
    """A plain-text page: 200 if the return verified, else 400. Replace it with a
    redirect to the shop's order page."""
    content_type = "text/plain; charset=utf-8"
    if outcome.info is None:
        return HttpResponse(
            "This payment return could not be verified.\n", status=400, content_type=content_type
        )
    message = f"Thank you. Order {outcome.info.out_trade_no} is being confirmed.\n"
    return HttpResponse(message, content_type=content_type)


def _return_handler(given: ReturnHandler | str | None) -> ReturnHandler:
    handler: Any = given or getattr(settings, "PAYHUB_RETURN_HANDLER", None)
    if isinstance(handler, str):
        handler = import_string(handler)
    return handler or default_return_handler


def _hub_with(channel: str) -> PayHub:
    """The process's hub, or 404 if it has no channel account of that name."""
    hub = get_hub()
    try:
        hub.channel(channel)
    except UnknownChannelError:
        raise Http404("no such payment channel") from None
    return hub


#: Every header as the server received it (Django's WSGI and ASGI handlers both
#: hand values over as ISO-8859-1 strings; ASGI joins a repeated header with ",").
raw_headers = web.wire_headers


def to_response(answer: web.WebResponse) -> HttpResponse:
    """A framework-neutral answer as a Django response, with exactly its headers."""
    response = HttpResponse(answer.body, status=answer.status)
    del response["Content-Type"]
    for name, value in answer.headers:
        response[name] = value
    return response


def ack_response(ack: Ack) -> HttpResponse:
    """The channel's exact acknowledgement: status, body and content type (or none)."""
    return to_response(web.ack_response(ack))
