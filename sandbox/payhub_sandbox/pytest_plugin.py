"""pytest fixtures for testing a shop (or payhub itself) against the sandbox.

``payhub-sandbox`` registers this module through the ``pytest11`` entry point,
so installing it is enough: every fixture below is available in any test.
Every name starts with ``payhub_`` so none clashes with a project's own.

======================================  =========================================================
``payhub_sandbox``                      a :class:`Sandbox` on the real clock, in-process; its
                                        notifications go through ``payhub_sandbox_notify``
``payhub_sandbox_options``              keyword arguments for it (override to change them)
``payhub_sandbox_keys``                 RSA keys, made once per session: the platform's, a
                                        merchant's
``payhub_sandbox_notify``               a :class:`NotifyRouter`: mount the shop's endpoints
                                        (WSGI app, handler, transport) by URL prefix; the
                                        rest goes to the network
``payhub_sandbox_app``                  the sandbox's Flask app
``payhub_sandbox_http``                 an ``httpx.Client`` mounted on the app (base URL
                                        :data:`BASE_URL`)
``payhub_sandbox_live``                 the app served on a free loopback port in a thread,
                                        notifications delivered by the background thread
                                        (:class:`LiveSandbox`)
``payhub_sandbox_hub``                  a ``PayHub`` with every channel (Alipay, WeChat Pay,
                                        UnionPay) configured against the sandbox, their
                                        merchants registered, and a store; each channel's
                                        notifications reach it (:data:`NOTIFY_URLS`);
                                        Alipay in certificate mode (transfers need it)
``payhub_sandbox_store_url``            the hub's store: ini ``payhub_sandbox_store_url`` or
                                        ``PAYHUB_SANDBOX_STORE_URL`` (PostgreSQL, MySQL,
                                        SQLite...), else SQLite in ``tmp_path``
``payhub_sandbox_hub_channels``         which channels the hub gets (default all three)
``payhub_sandbox_responses``            mounts the sandbox for ``requests``-based clients
                                        with ``responses`` (:class:`ResponsesMount`)
``payhub_pay_as_buyer``                 ``(out_trade_no, *, merchant_id=None, channel=None)``
                                        → the paid trade
``payhub_deliver``                      ``(*, force=False)`` → the attempts made now
``payhub_wait_for_notification``        ``(out_trade_no=None, *, event_type=None,
                                        acknowledged=None, timeout=10.0)`` → the next
                                        matching attempt
======================================  =========================================================

The ini option ``payhub_sandbox_time_factor`` (default 60) sets the sandbox's
time factor: Alipay's first resend comes 4 s after a failure instead of 4 min.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from payhub_sandbox._app import create_app
from payhub_sandbox._errors import InvalidInputError, TradeNotFoundError
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._state import Trade
from payhub_sandbox.delivery._scheduler import DeliveryAttempt, event_type_of

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from responses import RequestsMock

    from payhub import PayHub

__all__ = [
    "ALIPAY_APP_ID",
    "ALIPAY_NOTIFY_URL",
    "ALIPAY_SELLER_ID",
    "BASE_URL",
    "HUB_CHANNELS",
    "NOTIFY_URLS",
    "SHOP_URL",
    "UNIONPAY_MER_ID",
    "UNIONPAY_NOTIFY_URL",
    "WECHAT_APP_ID",
    "WECHAT_MCH_ID",
    "WECHAT_NOTIFY_URL",
    "LiveSandbox",
    "NotificationWaiter",
    "NotifyRouter",
    "ResponsesMount",
    "SandboxKeys",
    "deliver",
    "pay_as_buyer",
    "wait_for_notification",
]

#: Where the in-process sandbox answers (``payhub_sandbox_http``, ``payhub_sandbox_responses``).
BASE_URL: Final = "http://payhub-sandbox.test"
#: The shop's side, for notification URLs mounted on ``payhub_sandbox_notify``.
SHOP_URL: Final = "http://shop.payhub-sandbox.test"
ALIPAY_APP_ID: Final = "2021000000000001"
ALIPAY_SELLER_ID: Final = "2088000000000001"
#: Where ``payhub_sandbox_hub``'s Alipay notifications are delivered (to the hub).
ALIPAY_NOTIFY_URL: Final = f"{SHOP_URL}/alipay/notify"
WECHAT_MCH_ID: Final = "1900000001"
WECHAT_APP_ID: Final = "wxd678efh567hg6787"
#: The merchant API certificate's serial ``payhub_sandbox_hub`` signs WeChat requests with.
WECHAT_SERIAL_NO: Final = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
#: A test API v3 key (32 ASCII bytes), not a secret.
WECHAT_API_V3_KEY: Final = "payhubSandboxApiV3Key0123456789a"
WECHAT_NOTIFY_URL: Final = f"{SHOP_URL}/wechat/notify"
UNIONPAY_MER_ID: Final = "777290058110048"
UNIONPAY_PFX_PASSWORD: Final = "000000"  # noqa: S105 - the test .pfx's password
UNIONPAY_NOTIFY_URL: Final = f"{SHOP_URL}/unionpay/notify"
#: channel → where ``payhub_sandbox_hub`` receives its notifications.
NOTIFY_URLS: Final = {
    "alipay": ALIPAY_NOTIFY_URL,
    "wechat": WECHAT_NOTIFY_URL,
    "unionpay": UNIONPAY_NOTIFY_URL,
}
#: The channels ``payhub_sandbox_hub`` configures by default: every one.
HUB_CHANNELS: Final = ("alipay", "wechat", "unionpay")
STORE_URL_INI: Final = "payhub_sandbox_store_url"
STORE_URL_ENV: Final = "PAYHUB_SANDBOX_STORE_URL"

_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "payhub_sandbox_time_factor",
        "time factor of the payhub_sandbox fixture's Sandbox (default 60)",
        default="60",
    )
    parser.addini(
        STORE_URL_INI,
        f"the store URL of payhub_sandbox_hub (also {STORE_URL_ENV}; default a SQLite file "
        "in tmp_path)",
        default="",
    )


# -- helpers, usable without the fixtures ------------------------------------------------


def pay_as_buyer(
    sandbox: Sandbox,
    out_trade_no: str,
    *,
    merchant_id: str | None = None,
    channel: str | None = None,
) -> Trade:
    """The buyer pays the trade with this merchant order number (any channel); its
    notification is scheduled. Name ``merchant_id`` or ``channel`` if several match."""
    found = [
        t
        for t in sandbox.trades
        if t.out_trade_no == out_trade_no
        and (merchant_id is None or t.merchant_id == merchant_id)
        and (channel is None or t.channel == channel)
    ]
    if not found:
        raise TradeNotFoundError(f"no trade {out_trade_no!r} in the sandbox (create it first)")
    if len(found) > 1:
        raise InvalidInputError(
            f"{len(found)} trades are numbered {out_trade_no!r}: name merchant_id or channel"
        )
    trade = found[0]
    return sandbox.channel(trade.channel).pay(trade.merchant_id, trade.out_trade_no)


def deliver(sandbox: Sandbox, *, force: bool = False) -> list[DeliveryAttempt]:
    """Post the notifications due now (every pending one with ``force``); the attempts."""
    return sandbox.deliver_due(force=force)


def _matches(
    sandbox: Sandbox,
    attempt: DeliveryAttempt,
    out_trade_no: str | None,
    event_type: str | None,
    acknowledged: bool | None,
) -> bool:
    if not attempt.sent:
        return False
    if acknowledged is not None and attempt.acknowledged is not acknowledged:
        return False
    if out_trade_no is not None and not any(
        t.trade_no == attempt.trade_no and t.out_trade_no == out_trade_no for t in sandbox.trades
    ):
        return False
    return (
        event_type is None
        or event_type_of(sandbox.notification(attempt.notification_id)) == event_type
    )


def wait_for_notification(
    sandbox: Sandbox,
    out_trade_no: str | None = None,
    *,
    event_type: str | None = None,
    acknowledged: bool | None = None,
    timeout: float = 10.0,
    since: int = 0,
) -> tuple[int, DeliveryAttempt]:
    """Deliver what is due, again and again, until a notification attempt that left
    the sandbox matches (trade, ``event_type`` such as ``payment`` or ``refund``,
    ``acknowledged``); returns its index in ``sandbox.deliveries`` and the attempt.
    Only attempts from index ``since`` on are considered. ``TimeoutError`` after
    ``timeout`` seconds (real time)."""
    deadline = time.monotonic() + timeout
    while True:
        sandbox.deliver_due()
        attempts = sandbox.deliveries
        for index in range(since, len(attempts)):
            if _matches(sandbox, attempts[index], out_trade_no, event_type, acknowledged):
                return index, attempts[index]
        if time.monotonic() >= deadline:
            seen = ", ".join(
                f"{a.notification_id}#{a.number} {a.kind} -> {a.status_code or a.error}"
                for a in attempts[since:]
            )
            raise TimeoutError(
                f"no notification matched in {timeout:g}s "
                f"(out_trade_no={out_trade_no!r}, event_type={event_type!r}); "
                f"attempts: {seen or 'none'}"
            )
        time.sleep(0.01)


class NotificationWaiter:
    """:func:`wait_for_notification` that remembers where it stopped: each call
    returns the next matching attempt after the one the previous call returned."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._next = 0

    def __call__(
        self,
        out_trade_no: str | None = None,
        *,
        event_type: str | None = None,
        acknowledged: bool | None = None,
        timeout: float = 10.0,
    ) -> DeliveryAttempt:
        index, attempt = wait_for_notification(
            self._sandbox,
            out_trade_no,
            event_type=event_type,
            acknowledged=acknowledged,
            timeout=timeout,
            since=self._next,
        )
        self._next = index + 1
        return attempt


# -- notification routing -------------------------------------------------------------------


class NotifyRouter(httpx.BaseTransport):
    """The sandbox's notification transport: requests whose URL starts with a mounted
    prefix go to that in-process endpoint (the longest prefix wins); others to the network."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mounts: dict[str, httpx.BaseTransport] = {}
        self._network: httpx.HTTPTransport | None = None

    def mount(self, prefix: str, transport: httpx.BaseTransport) -> None:
        with self._lock:
            self._mounts[prefix] = transport

    def mount_wsgi(self, prefix: str, app: WSGIApplication) -> None:
        """A WSGI app (a Flask or Django shop) receives the URLs under ``prefix``."""
        self.mount(prefix, httpx.WSGITransport(app=app))

    def mount_handler(
        self, prefix: str, handler: Callable[[httpx.Request], httpx.Response]
    ) -> None:
        """A function ``request -> response`` receives the URLs under ``prefix``."""
        self.mount(prefix, httpx.MockTransport(handler))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        with self._lock:
            chosen = max((p for p in self._mounts if url.startswith(p)), key=len, default=None)
            transport = self._mounts[chosen] if chosen is not None else None
            if transport is None:
                if self._network is None:
                    self._network = httpx.HTTPTransport()
                transport = self._network
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            network, self._network = self._network, None
        if network is not None:
            network.close()


# -- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxKeys:
    """The sandbox platform's key and a merchant's (RSA 2048)."""

    platform: rsa.RSAPrivateKey
    merchant: rsa.RSAPrivateKey

    @cached_property
    def merchant_private_pem(self) -> str:
        return self.merchant.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @cached_property
    def merchant_public_pem(self) -> str:
        return (
            self.merchant.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


@pytest.fixture(scope="session")
def payhub_sandbox_keys() -> SandboxKeys:
    """Made once per session (an RSA key takes tens of milliseconds)."""
    return SandboxKeys(
        platform=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        merchant=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture
def payhub_sandbox_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments for the ``payhub_sandbox`` fixture's :class:`Sandbox`."""
    return {"time_factor": float(request.config.getini("payhub_sandbox_time_factor"))}


@pytest.fixture
def payhub_sandbox_notify() -> Iterator[NotifyRouter]:
    router = NotifyRouter()
    yield router
    router.close()


@pytest.fixture
def payhub_sandbox(
    payhub_sandbox_keys: SandboxKeys,
    payhub_sandbox_notify: NotifyRouter,
    payhub_sandbox_options: dict[str, Any],
) -> Iterator[Sandbox]:
    options: dict[str, Any] = {
        "alipay_platform_key": payhub_sandbox_keys.platform,
        "notify_transport": payhub_sandbox_notify,
        **payhub_sandbox_options,
    }
    with Sandbox(**options) as sandbox:
        yield sandbox


@pytest.fixture
def payhub_sandbox_app(payhub_sandbox: Sandbox) -> Flask:
    return create_app(payhub_sandbox)


@pytest.fixture
def payhub_sandbox_http(payhub_sandbox_app: Flask) -> Iterator[httpx.Client]:
    transport = httpx.WSGITransport(app=payhub_sandbox_app)
    with httpx.Client(transport=transport, base_url=BASE_URL) as client:
        yield client


@dataclass(frozen=True)
class LiveSandbox:
    """The sandbox served over real HTTP on loopback."""

    url: str
    sandbox: Sandbox
    app: Flask

    @property
    def gateway_url(self) -> str:
        """Alipay's ``gateway.do`` on this server."""
        return f"{self.url}/gateway.do"


@pytest.fixture
def payhub_sandbox_live(
    payhub_sandbox: Sandbox, payhub_sandbox_app: Flask
) -> Iterator[LiveSandbox]:
    from payhub_sandbox._serving import make_sandbox_server  # noqa: PLC0415 - live tests only

    server = make_sandbox_server("127.0.0.1", 0, payhub_sandbox_app)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="payhub-sandbox-live",
        daemon=True,
    )
    thread.start()
    payhub_sandbox.start_delivery_thread(interval=0.05)
    try:
        yield LiveSandbox(
            url=f"http://127.0.0.1:{server.server_port}",
            sandbox=payhub_sandbox,
            app=payhub_sandbox_app,
        )
    finally:
        payhub_sandbox.stop()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def payhub_sandbox_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store ``payhub_sandbox_hub`` uses: the ini option ``payhub_sandbox_store_url``
    or ``PAYHUB_SANDBOX_STORE_URL`` (any SQLAlchemy URL payhub supports: PostgreSQL,
    MySQL/MariaDB, a SQLite file), else a SQLite file in ``tmp_path``. Override the
    fixture to give each test its own database."""
    given = os.environ.get(STORE_URL_ENV) or str(request.config.getini(STORE_URL_INI) or "")
    return given or f"sqlite:///{tmp_path / 'payhub-sandbox.db'}"


@pytest.fixture
def payhub_sandbox_hub_channels() -> tuple[str, ...]:
    """The channels ``payhub_sandbox_hub`` configures (override to take fewer)."""
    return HUB_CHANNELS


def _hub_channel_config(sandbox: Sandbox, keys: SandboxKeys, channel: str) -> dict[str, Any]:
    """One channel of the hub's configuration; registers its merchant in the sandbox."""
    if channel == "alipay":
        # Certificate mode: Alipay answers fund APIs (transfers, hub.payout) only in it.
        app_cert = sandbox.issue_alipay_app_cert(ALIPAY_APP_ID, keys.merchant_public_pem)
        sandbox.add_alipay_merchant(ALIPAY_APP_ID, app_cert, ALIPAY_SELLER_ID)
        return {
            "type": "alipay",
            "app_id": ALIPAY_APP_ID,
            "app_private_key": keys.merchant_private_pem,
            "app_cert": app_cert,
            "alipay_cert": sandbox.alipay_cert_pem,
            "alipay_root_cert": sandbox.alipay_root_cert_pem,
            "environment": "sandbox",
            "gateway": f"{BASE_URL}/gateway.do",
            "bill_download_hosts": [BASE_URL],
            "seller_id": ALIPAY_SELLER_ID,
            "notify_url": ALIPAY_NOTIFY_URL,
        }
    if channel == "wechat":
        sandbox.add_wechat_merchant(
            WECHAT_MCH_ID,
            WECHAT_APP_ID,
            WECHAT_SERIAL_NO,
            keys.merchant_public_pem,
            WECHAT_API_V3_KEY.encode("ascii"),
            "public_key",
        )
        return {
            "type": "wechat",
            "mch_id": WECHAT_MCH_ID,
            "app_id": WECHAT_APP_ID,
            "merchant_private_key": keys.merchant_private_pem,
            "merchant_serial_no": WECHAT_SERIAL_NO,
            "api_v3_key": WECHAT_API_V3_KEY,
            "wechatpay_public_key": sandbox.wechat_public_key_pem,
            "wechatpay_public_key_id": sandbox.wechat_public_key_id,
            "environment": "sandbox",
            "base_url": BASE_URL,
            "notify_url": WECHAT_NOTIFY_URL,
            "refund_notify_url": WECHAT_NOTIFY_URL,
        }
    if channel == "unionpay":
        pfx, _ = sandbox.issue_unionpay_merchant(
            UNIONPAY_MER_ID, UNIONPAY_PFX_PASSWORD, key=keys.merchant
        )
        return {
            "type": "unionpay",
            "mer_id": UNIONPAY_MER_ID,
            "environment": "test",
            "sign_cert": pfx,
            "sign_cert_password": UNIONPAY_PFX_PASSWORD,
            "root_cert": sandbox.unionpay_root_cert_pem,
            "middle_cert": sandbox.unionpay_middle_cert_pem,
            "gateway_url": BASE_URL,
            "back_url": UNIONPAY_NOTIFY_URL,
        }
    raise InvalidInputError(f"payhub_sandbox_hub: no channel {channel!r} (one of {HUB_CHANNELS})")


@pytest.fixture
def payhub_sandbox_hub(  # noqa: PLR0917 - pytest passes fixtures by name
    payhub_sandbox: Sandbox,
    payhub_sandbox_http: httpx.Client,
    payhub_sandbox_notify: NotifyRouter,
    payhub_sandbox_keys: SandboxKeys,
    payhub_sandbox_store_url: str,
    payhub_sandbox_hub_channels: tuple[str, ...],
) -> Iterator[PayHub]:
    """payhub configured against the sandbox for every channel, with a store at
    ``payhub_sandbox_store_url``; each channel's notifications reach it.

    Built through payhub's public configuration (the channels found as plugins):
    the sandbox itself never imports payhub's channels.
    """
    from payhub import PayHub, Store  # noqa: PLC0415 - the facade, only for this fixture

    config = {
        name: _hub_channel_config(payhub_sandbox, payhub_sandbox_keys, name)
        for name in payhub_sandbox_hub_channels
    }
    store = Store(payhub_sandbox_store_url)
    store.upgrade()
    hub = PayHub.from_config({"channels": config}, store=store, http_client=payhub_sandbox_http)

    def receiver(channel: str) -> Callable[[httpx.Request], httpx.Response]:
        def receive(request: httpx.Request) -> httpx.Response:
            outcome = hub.handle_notification(channel, request.headers, request.read())
            return httpx.Response(
                outcome.ack.status_code, content=outcome.ack.body, headers=outcome.ack.headers
            )

        return receive

    for name in payhub_sandbox_hub_channels:
        payhub_sandbox_notify.mount_handler(NOTIFY_URLS[name], receiver(name))
    try:
        yield hub
    finally:
        hub.close()
        store.close()


@pytest.fixture
def payhub_pay_as_buyer(payhub_sandbox: Sandbox) -> Callable[..., Trade]:
    def pay(
        out_trade_no: str, *, merchant_id: str | None = None, channel: str | None = None
    ) -> Trade:
        return pay_as_buyer(payhub_sandbox, out_trade_no, merchant_id=merchant_id, channel=channel)

    return pay


@pytest.fixture
def payhub_deliver(payhub_sandbox: Sandbox) -> Callable[..., list[DeliveryAttempt]]:
    def deliver_now(*, force: bool = False) -> list[DeliveryAttempt]:
        return deliver(payhub_sandbox, force=force)

    return deliver_now


@pytest.fixture
def payhub_wait_for_notification(payhub_sandbox: Sandbox) -> NotificationWaiter:
    return NotificationWaiter(payhub_sandbox)


# -- requests, through responses --------------------------------------------------------------


@dataclass(frozen=True)
class ResponsesMount:
    """The sandbox mounted for ``requests``: every request to :attr:`base_url` is answered
    by the Flask app in-process. ``mock`` is the active ``responses.RequestsMock``
    (add your own stubs or ``mock.add_passthru(...)`` to it)."""

    base_url: str
    sandbox: Sandbox
    app: Flask
    mock: RequestsMock

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url}/gateway.do"


def _wire_body(body: object) -> bytes:
    """What ``requests`` would put on the wire for a prepared body."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        try:
            return body.encode("iso-8859-1")  # as http.client encodes a str body
        except UnicodeEncodeError:
            return body.encode("utf-8")
    read = getattr(body, "read", None)
    if callable(read):
        data = read()
        return data if isinstance(data, bytes) else str(data).encode("utf-8")
    return b"".join(bytes(chunk) for chunk in body)  # type: ignore[attr-defined]


@pytest.fixture
def payhub_sandbox_responses(
    payhub_sandbox: Sandbox, payhub_sandbox_app: Flask
) -> Iterator[ResponsesMount]:
    responses = pytest.importorskip("responses")
    client = payhub_sandbox_app.test_client()

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        reply = client.open(
            url.path or "/",
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method,
            headers=headers,
            data=_wire_body(request.body),
        )
        body = reply.get_data()
        out = {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
        reply.close()
        return reply.status_code, out, body

    pattern = re.compile(re.escape(BASE_URL) + r"(?:[/?#].*)?\Z")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in _METHODS:
            mock.add_callback(method, pattern, callback=answer, content_type=None)
        yield ResponsesMount(
            base_url=BASE_URL, sandbox=payhub_sandbox, app=payhub_sandbox_app, mock=mock
        )
