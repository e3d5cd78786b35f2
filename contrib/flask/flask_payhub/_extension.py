"""The extension, its blueprint, and the accessor for the app's hub."""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from payhub import (
    Ack,
    ConfigurationError,
    InvalidRequestError,
    PayHub,
    PayhubError,
    ReturnInfo,
    UnknownChannelError,
    web,
)
from payhub.signing import guard_http_logs

__all__ = [
    "PayHubExtension",
    "ReturnHandler",
    "ReturnOutcome",
    "current_hub",
    "default_return_handler",
]

#: where the app's hub lives: ``app.extensions["payhub"]``
EXTENSION_KEY = "payhub"
DEFAULT_URL_PREFIX = "/payhub"


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


#: What answers a browser return: ``handler(outcome)`` returns any Flask response value.
ReturnHandler = Callable[[ReturnOutcome], ResponseReturnValue]


def default_return_handler(outcome: ReturnOutcome) -> ResponseReturnValue:
    """A plain-text page: 200 if the return verified, else 400. Replace it with
    a redirect to the shop's order page (``on_return=`` or ``PAYHUB_RETURN_HANDLER``)."""
    text_plain = {"Content-Type": "text/plain; charset=utf-8"}
    if outcome.info is None:
        return "This payment return could not be verified.\n", 400, text_plain
    message = f"Thank you. Order {outcome.info.out_trade_no} is being confirmed.\n"
    return message, 200, text_plain


def current_hub() -> PayHub:
    """The :class:`~payhub.PayHub` of the current Flask app."""
    try:
        hub: PayHub = current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "flask-payhub is not set up on this app: call PayHubExtension(app)"
        ) from None
    return hub


class PayHubExtension:
    """One :class:`~payhub.PayHub` per Flask app, and the payhub blueprint.

    The hub is built from ``app.config["PAYHUB"]`` (the hub configuration
    mapping) or from the JSON file named by ``app.config["PAYHUB_CONFIG_FILE"]``
    (relative to ``app.root_path``), unless a pre-built ``hub`` is given (tests,
    or a hub with an injected HTTP client or store). A hub the extension built
    is closed when the app is garbage-collected or the process exits, never per
    request; a given hub belongs to the caller.

    The blueprint (named ``payhub``) is mounted at ``url_prefix``
    (``PAYHUB_URL_PREFIX``, default ``/payhub``):

    - ``POST|GET <prefix>/notify/<channel>``: the channel's notification (a GET,
      as EPay sends, carries its signed form in the query string), answered
      with the channel's exact acknowledgement; a body over
      ``max_notification_bytes`` (``PAYHUB_MAX_NOTIFICATION_BYTES``, default
      64 KiB) is answered 413 before it is read;
    - ``GET|POST <prefix>/return/<channel>``: the buyer's browser return,
      verified and answered by ``on_return`` (``PAYHUB_RETURN_HANDLER``).
      It never credits a payment.

    >>> ext = PayHubExtension()
    >>> ext.init_app(app)  # doctest: +SKIP
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        hub: PayHub | None = None,
        url_prefix: str | None = None,
        on_return: ReturnHandler | None = None,
        max_notification_bytes: int | None = None,
    ) -> None:
        self._hub = hub
        self._url_prefix = url_prefix
        self._on_return = on_return
        self._max_notification_bytes = max_notification_bytes
        if app is not None:
            self.init_app(app)

    def init_app(
        self,
        app: Flask,
        *,
        hub: PayHub | None = None,
        url_prefix: str | None = None,
        on_return: ReturnHandler | None = None,
        max_notification_bytes: int | None = None,
    ) -> None:
        """Set up payhub on ``app``; arguments given here win over the constructor's."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("flask-payhub is already set up on this app")
        handler = on_return or self._on_return or app.config.get("PAYHUB_RETURN_HANDLER")
        if handler is not None and not callable(handler):
            raise ConfigurationError("PAYHUB_RETURN_HANDLER must be callable")
        prefix = url_prefix or self._url_prefix or app.config.get("PAYHUB_URL_PREFIX")
        cap = web.check_max_notification_bytes(
            _first_given(
                max_notification_bytes,
                self._max_notification_bytes,
                app.config.get("PAYHUB_MAX_NOTIFICATION_BYTES"),
            ),
            name="PAYHUB_MAX_NOTIFICATION_BYTES",
        )
        blueprint = _blueprint(handler or default_return_handler, cap)
        given = hub or self._hub
        if given is None:
            built = PayHub.from_config(_hub_config(app))
            # The app's lifetime, not a request's: closed when the app goes away
            # or at exit. The finalizer holds the hub, never the app.
            weakref.finalize(app, built.close)
            given = built
        app.extensions[EXTENSION_KEY] = given
        # The dev server logs each request line, Alipay's return URL with its ``sign``.
        guard_http_logs("werkzeug")
        app.register_blueprint(blueprint, url_prefix=prefix or DEFAULT_URL_PREFIX)
        # ``flask payhub sync`` and the rest, on this app's configuration.
        from flask_payhub._cli import payhub_group  # noqa: PLC0415

        app.cli.add_command(payhub_group)


def _first_given(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _hub_config(app: Flask) -> Mapping[str, Any]:
    """``PAYHUB`` (a mapping) or the JSON file ``PAYHUB_CONFIG_FILE``; exactly one."""
    try:
        return web.hub_config(app.config, app.root_path)
    except ConfigurationError as exc:
        raise ConfigurationError(f"flask-payhub: {exc.message}") from None


def _blueprint(on_return: ReturnHandler, max_body: int) -> Blueprint:
    """A new blueprint per app, so each app keeps its own return handler and body cap."""
    blueprint = Blueprint("payhub", __name__)

    @blueprint.route("/notify/<channel>", methods=["GET", "POST"])
    def notify(channel: str) -> Response:
        hub = _hub_with(channel)
        if request.method == "GET":  # EPay and its clones notify with a signed query string
            return to_response(
                web.handle_query_notification(
                    hub, channel, request.headers.items(), request.query_string, limit=max_body
                )
            )
        answer = web.handle_notification(
            hub,
            channel,
            request.headers.items(),
            request.content_length,
            body_reader(),
            limit=max_body,
        )
        return to_response(answer)

    @blueprint.route("/return/<channel>", methods=["GET", "POST"])
    def browser_return(channel: str) -> ResponseReturnValue:
        hub = _hub_with(channel)
        # Alipay returns with a GET; UnionPay's frontUrl receives a form POST.
        fields = request.args if request.method == "GET" else request.form
        return on_return(verify_return(hub, channel, fields))

    return blueprint


def _hub_with(channel: str) -> PayHub:
    """The app's hub, or 404 if it has no channel account of that name."""
    hub = current_hub()
    try:
        hub.channel(channel)
    except UnknownChannelError:
        abort(404)
    return hub


def body_reader() -> Callable[[int], bytes]:
    """How to read the request body as received: never form-parsed, since the
    signature covers the exact bytes (``+``, ``%2B``, GBK text).

    werkzeug's stream stops at ``Content-Length`` and yields nothing for a body
    of unknown length unless the server says it ends the stream itself
    (``wsgi.input_terminated``, as for chunked requests); payhub's cap bounds
    what is read either way.

    Raises RuntimeError if code before the view (a ``before_request`` hook)
    form-parsed the body: werkzeug then consumed the stream, and a notification
    checked against an empty body would be refused forever.
    """
    state = vars(request)
    if "_cached_data" in state:  # get_data() ran first: the bytes are kept
        return io.BytesIO(request.get_data(cache=True, parse_form_data=False)).read
    if "form" in state and request.want_form_data_parsed:
        raise RuntimeError(
            "the notification body was form-parsed (request.form) before flask-payhub "
            "read it, so its raw bytes are gone: keep request.form out of hooks that "
            "run for the payhub blueprint"
        )
    return request.stream.read


def to_response(answer: web.WebResponse) -> Response:
    """A framework-neutral answer as a Flask response, with exactly its headers."""
    response = Response(answer.body, status=answer.status)
    del response.headers["Content-Type"]
    for name, value in answer.headers:
        response.headers[name] = value
    return response


def ack_response(ack: Ack) -> Response:
    """The channel's exact acknowledgement: status, body and content type (or none)."""
    return to_response(web.ack_response(ack))


def verify_return(hub: PayHub, channel: str, fields: MultiDict[str, str]) -> ReturnOutcome:
    """Verify a browser return; a repeated parameter is refused (which one was signed?)."""
    params = {key: values[0] for key, values in fields.lists()}
    try:
        repeated = sorted(key for key, values in fields.lists() if len(values) > 1)
        if repeated:
            raise InvalidRequestError(f"{channel}: repeated return parameters {repeated}")
        info = hub.verify_return(channel, params)
    except PayhubError as exc:
        return ReturnOutcome(channel=channel, params=params, error=exc)
    return ReturnOutcome(channel=channel, params=params, info=info)
