"""``payhub-sandbox`` commands that drive a running sandbox through its control API.

::

    payhub-sandbox trigger SCENARIO --channel alipay [--order NO] [--json]
    payhub-sandbox listen --forward-to http://127.0.0.1:5000 [--channel wechat] [--json]
    payhub-sandbox trades [--json]
    payhub-sandbox notifications [--json]

Each takes ``--url`` (``PAYHUB_SANDBOX_URL``, default ``http://127.0.0.1:8000``)
and ``--token`` (``PAYHUB_SANDBOX_TOKEN``) to reach the sandbox.

``listen`` serves a small endpoint on loopback and subscribes it (``POST
/_control/listeners``): from then on the sandbox POSTs each notification to it
instead of to the trade's notify URL, and it forwards the request, byte for
byte with its headers, to ``--forward-to``, and hands the shop's answer back to
the sandbox, which applies the channel's acknowledgement rule and retry
schedule to it as usual. One line per delivery says what the shop answered.
"""

from __future__ import annotations

import contextlib
import enum
import signal
import sys
import threading
from collections.abc import Iterable
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import typer
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as WerkzeugResponse

from payhub_sandbox._cli_common import (
    EXIT_USAGE,
    TOKEN_ENV,
    URL_ENV,
    ControlClient,
    dump_json,
    echo,
    fail,
)
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._serving import make_sandbox_server
from payhub_sandbox._triggers import SCENARIOS
from payhub_sandbox.delivery._listeners import (
    CHANNEL_HEADER,
    KIND_HEADER,
    LISTENER_HEADERS,
    NOTIFICATION_HEADER,
    NOTIFY_URL_HEADER,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Forwarder", "forward_target", "register_remote_commands"]

DEFAULT_URL: Final = "http://127.0.0.1:8000"
#: Not forwarded: they describe one hop, not the notification.
_HOP_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
_SHOWN_BODY: Final = 60

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar=URL_ENV, show_envvar=True, help="The running sandbox's URL."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        show_envvar=True,
        help="The sandbox's control token, if it requires one.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (one document; listen: one per line).")
]


class Channel(enum.StrEnum):
    alipay = "alipay"
    wechat = "wechat"
    unionpay = "unionpay"


class OutageMode(enum.StrEnum):
    down = "down"
    system_error = "system_error"
    html_error = "html_error"


#: The scenarios, as typer lists choices (an Enum).
Scenario = enum.StrEnum("Scenario", {name: name for name in SCENARIOS})  # type: ignore[misc]

ChannelOption = Annotated[Channel | None, typer.Option("--channel", help="Only this channel.")]


def _scenario_help() -> str:
    lines = "\n\n".join(f"{name}: {does}" for name, does in SCENARIOS.items())
    return (
        "Make something happen on a running sandbox, as stripe trigger does. The scenario "
        "acts on the trade named by --order, else the channel's newest unpaid (or, for "
        f"refund, paid) trade.\n\n{lines}"
    )


def trigger(  # noqa: PLR0917 - typer passes a command's options by name
    scenario: Annotated[Scenario, typer.Argument(help="What to make happen.")],
    channel: Annotated[Channel, typer.Option("--channel", help="The channel.")],
    order: Annotated[
        str | None, typer.Option("--order", help="The shop's order number (out_trade_no).")
    ] = None,
    merchant: Annotated[
        str | None,
        typer.Option("--merchant", help="The merchant (app_id, mchid, merId)."),
    ] = None,
    amount: Annotated[
        str | None, typer.Option(help="refund: how much, in yuan (default: all refundable).")
    ] = None,
    seconds: Annotated[
        float | None,
        typer.Option(help="delayed-notification: the delay (60); outage: how long (30)."),
    ] = None,
    count: Annotated[
        int | None, typer.Option(help="duplicate-notification: copies of each attempt (2).")
    ] = None,
    mode: Annotated[
        OutageMode | None, typer.Option(help="outage: how the gateway fails (down).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    body: dict[str, Any] = {"scenario": str(scenario), "channel": str(channel)}
    for name, value in (
        ("out_trade_no", order),
        ("merchant_id", merchant),
        ("amount", amount),
        ("seconds", seconds),
        ("count", count),
        ("mode", None if mode is None else str(mode)),
    ):
        if value is not None:
            body[name] = value
    with ControlClient(url, token) as control:
        done = control.call("POST", "/trigger", body)
    echo(dump_json(done) if as_json else f"{scenario}: {done['message']}")


def _table(columns: Iterable[str], rows: Iterable[Iterable[str]]) -> None:
    """Tab-separated, a header first (as ``payhub events list`` prints)."""
    echo("\t".join(columns))
    for row in rows:
        echo("\t".join(str(cell) for cell in row))


def trades(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List every channel's trades."""
    with ControlClient(url, token) as control:
        found = control.call("GET", "/trades")
    if as_json:
        echo(dump_json(found))
        return
    _table(
        (
            "channel",
            "merchant",
            "out_trade_no",
            "trade_no",
            "amount",
            "state",
            "refunded",
            "created",
        ),
        (
            (
                t["channel"],
                t["merchant_id"],
                t["out_trade_no"],
                t["trade_no"],
                t["amount"],
                t.get("trade_status") or t.get("trade_state") or t["state"],
                t["refunded"],
                _local(t["created_at"]),
            )
            for t in found
        ),
    )


def notifications(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the notifications sent or pending, with their delivery progress."""
    with ControlClient(url, token) as control:
        found = control.call("GET", "/notifications")
    if as_json:
        for item in found:
            item.pop("body", None)  # signed bytes; `--json` is for reading, not replaying
        echo(dump_json(found))
        return
    _table(
        ("id", "channel", "kind", "trade_no", "url", "attempts", "status"),
        (
            (
                n["id"],
                n["channel"],
                n["kind"],
                n["trade_no"],
                n["url"],
                f"{n['attempts']}/{n['max_attempts']}",
                n["status"] + (" (held)" if n["held"] else ""),
            )
            for n in found
        ),
    )


def _local(iso: str | None) -> str:
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso)
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S") if moment.tzinfo else iso


# -- listen -------------------------------------------------------------------------------


def forward_target(forward_to: str, notify_url: str) -> str:
    """Where a notification goes: ``forward_to``, or, when it names no path
    (``http://127.0.0.1:5000``), its host with the notification's own path and query."""
    target = urlsplit(forward_to)
    if target.path not in ("", "/") or target.query:
        return forward_to
    original = urlsplit(notify_url)
    return urlunsplit((target.scheme, target.netloc, original.path or "/", original.query, ""))


def _shown(body: bytes) -> str:
    text = body[:_SHOWN_BODY].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    return text + ("…" if len(body) > _SHOWN_BODY else "")


class Forwarder:
    """The listener's WSGI app: forward each request to the shop, answer with its answer."""

    def __init__(self, forward_to: str, *, as_json: bool, timeout: float = 30.0) -> None:
        self.forward_to = forward_to
        self._as_json = as_json
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._print_lock = threading.Lock()
        self.count = 0

    def close(self) -> None:
        self._client.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(cache=False)
        notify_url = request.headers.get(NOTIFY_URL_HEADER, "")
        target = forward_target(self.forward_to, notify_url or self.forward_to)
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _HOP_HEADERS and name.lower() not in LISTENER_HEADERS
        ]
        error: str | None = None
        try:
            answer = self._client.request(request.method, target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            reply = WerkzeugResponse(f"payhub-sandbox listen: {error}", status=502)
            status: int | None = None
            shown = ""
        else:
            status, shown = answer.status_code, _shown(answer.content)
            reply = WerkzeugResponse(answer.content, status=answer.status_code)
            if "content-type" in answer.headers:
                reply.headers["Content-Type"] = answer.headers["content-type"]
        self._report(
            request=request,
            notify_url=notify_url,
            target=target,
            status=status,
            shown=shown,
            error=error,
        )
        return reply(environ, start_response)

    def _report(
        self,
        *,
        request: Request,
        notify_url: str,
        target: str,
        status: int | None,
        shown: str,
        error: str | None,
    ) -> None:
        at = datetime.now(CHINA_TZ)
        record = {
            "at": at.isoformat(timespec="seconds"),
            "notification": request.headers.get(NOTIFICATION_HEADER, ""),
            "channel": request.headers.get(CHANNEL_HEADER, ""),
            "kind": unquote(request.headers.get(KIND_HEADER, "")),
            "notify_url": notify_url,
            "forwarded_to": target,
            "status": status,
            "answer": shown,
            "error": error,
        }
        if self._as_json:
            line = dump_json(record)
        else:
            outcome = f"[{status}] {shown}" if error is None else f"[failed] {error}"
            line = (
                f"{at:%Y-%m-%d %H:%M:%S}  {record['channel']:<8} {record['notification']} "
                f"{record['kind']}  --> {request.method} {target} {outcome}"
            )
        with self._print_lock:
            self.count += 1
            echo(line)


def listen(  # noqa: PLR0917 - typer passes a command's options by name
    forward_to: Annotated[
        str,
        typer.Option(
            "--forward-to",
            help="The shop's URL. Without a path (http://127.0.0.1:5000) each notification "
            "keeps its own path and query.",
        ),
    ],
    channel: ChannelOption = None,
    host: Annotated[
        str, typer.Option(help="Where the listener's own endpoint binds.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Its port (0 picks a free one).")] = 0,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Receive the sandbox's notifications and forward each to the shop, as stripe listen does."""
    if "://" not in forward_to:
        forward_to = f"http://{forward_to}"
    parts = urlsplit(forward_to)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"--forward-to: {forward_to!r} is not an http(s) URL", EXIT_USAGE)
    forwarder = Forwarder(forward_to, as_json=as_json)
    try:
        server = make_sandbox_server(host, port, forwarder)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    own = f"http://{host}:{server.port}/"
    with ControlClient(url, token) as control:
        subscribed = control.call(
            "POST", "/listeners", {"url": own, **({"channel": str(channel)} if channel else {})}
        )
        try:
            info = f"listener {subscribed['id']} at {own}"
            what = f"{channel} notifications" if channel else "notifications of every channel"
            print(
                f"Ready: {what} from {control.url} --> {forward_to} ({info}; Ctrl-C stops)",
                file=sys.stderr if as_json else sys.stdout,
                flush=True,
            )

            def _terminate(signum: int, frame: FrameType | None) -> None:
                raise KeyboardInterrupt

            signal.signal(signal.SIGTERM, _terminate)
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
        finally:
            server.server_close()
            forwarder.close()
            # Unsubscribe: the sandbox goes back to the trades' notify URLs.
            with contextlib.suppress(typer.Exit):  # the sandbox may be gone already
                control.call("DELETE", f"/listeners/{subscribed['id']}")


def register_remote_commands(app: typer.Typer) -> None:
    """Add the commands above to ``payhub-sandbox``."""
    app.command("trigger", help=_scenario_help())(trigger)
    app.command("listen")(listen)
    app.command("trades")(trades)
    app.command("notifications")(notifications)
