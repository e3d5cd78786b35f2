"""The notification body cap of both adapters (issue 11 point 14).

A body over the cap is answered 413 before it is read: these tests feed the
adapters a body that records how much of it was consumed, through each
framework's real WSGI entry point and through a real HTTP server.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from adapterkit import OK_ACK, ToyChannel, sign, signed
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, override_settings
from flask import Flask
from flask_payhub import PayHubExtension
from payhub_django import set_hub
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

from payhub import ConfigurationError, PayHub
from payhub.web import DEFAULT_MAX_NOTIFICATION_BYTES, read_capped

CAP = DEFAULT_MAX_NOTIFICATION_BYTES
HUGE = 50 * 1024 * 1024
WSGIApp = Callable[..., Any]


class Firehose(io.RawIOBase):
    """A request body of ``size`` bytes that counts what the application read."""

    def __init__(self, size: int = HUGE) -> None:
        self.size = size
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.consumed)
        buffer[:n] = b"a" * n
        self.consumed += n
        return n


@pytest.fixture
def toy() -> ToyChannel:
    return ToyChannel("toy")


@pytest.fixture
def hub(toy: ToyChannel) -> Iterator[PayHub]:
    with PayHub(channels=[toy]) as hub:
        yield hub


def flask_app(hub: PayHub, **options: Any) -> Flask:
    app = Flask(__name__)
    PayHubExtension(app, hub=hub, **options)
    return app


@pytest.fixture
def django_app(hub: PayHub) -> Iterator[WSGIApp]:
    set_hub(hub)
    yield WSGIHandler()
    set_hub(None)


def call(app: WSGIApp, path: str, body: Firehose, *, chunked: bool = False) -> int:
    """POST ``body`` to a WSGI app as a server would hand it over; the status code."""
    environ = EnvironBuilder(
        path=path, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    ).get_environ()
    environ["wsgi.input"] = body
    environ["SERVER_NAME"] = "testserver"
    environ["HTTP_HOST"] = "testserver"
    if chunked:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(body.size)
    statuses: list[str] = []
    result = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(result)
    getattr(result, "close", lambda: None)()
    return int(statuses[0].split()[0])


PATHS = {"flask": "/payhub/notify/toy", "django": "/payhub/notify/toy/"}


@pytest.fixture(params=["flask", "django"])
def adapter(request: pytest.FixtureRequest, hub: PayHub) -> tuple[WSGIApp, str]:
    if request.param == "flask":
        return flask_app(hub), PATHS["flask"]
    return request.getfixturevalue("django_app"), PATHS["django"]


def test_a_declared_length_over_the_cap_is_refused_unread(
    adapter: tuple[WSGIApp, str], toy: ToyChannel
) -> None:
    app, path = adapter
    body = Firehose(HUGE)
    assert call(app, path, body) == 413
    assert body.consumed == 0
    assert toy.received == []


def test_a_body_of_unknown_length_is_read_no_further_than_the_cap(
    adapter: tuple[WSGIApp, str], toy: ToyChannel
) -> None:
    app, path = adapter
    body = Firehose(HUGE)
    status = call(app, path, body, chunked=True)
    # Flask reads a chunked body up to cap + 1 bytes, then answers 413; Django
    # under WSGI reads no body without a Content-Length at all.
    assert body.consumed <= CAP + 1
    assert status in (413, 400)
    assert all(len(r.body) <= CAP for r in toy.received)


def test_a_body_at_the_cap_still_reaches_the_channel(
    adapter: tuple[WSGIApp, str], toy: ToyChannel
) -> None:
    app, path = adapter
    body = Firehose(CAP)
    status = call(app, path, body)
    assert body.consumed == CAP
    assert [len(r.body) for r in toy.received] == [CAP]
    assert status == 400  # the toy's failure ack: the body is not signed


def test_flask_cap_is_an_extension_option_and_a_config_key(hub: PayHub, toy: ToyChannel) -> None:
    small = b"x" * 16
    for app in (
        flask_app(hub, max_notification_bytes=16),
        _configured(hub, PAYHUB_MAX_NOTIFICATION_BYTES=16),
    ):
        client = app.test_client()
        ok = client.post(PATHS["flask"], data=small, headers=signed(small))
        assert ok.status_code == OK_ACK.status_code
        over = client.post(PATHS["flask"], data=small + b"y", headers=signed(small + b"y"))
        assert over.status_code == 413
        assert over.data == b"notification body too large\n"
    assert [r.body for r in toy.received] == [small, small]


def _configured(hub: PayHub, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    PayHubExtension(app, hub=hub)
    return app


@pytest.mark.parametrize("bad", [0, -1, True, "64k", 2**40])
def test_flask_refuses_a_meaningless_cap(hub: PayHub, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="PAYHUB_MAX_NOTIFICATION_BYTES"):
        _configured(hub, PAYHUB_MAX_NOTIFICATION_BYTES=bad)


def test_django_cap_is_a_setting(hub: PayHub, toy: ToyChannel) -> None:
    set_hub(hub)
    try:
        small = b"x" * 16
        with override_settings(PAYHUB_MAX_NOTIFICATION_BYTES=16):
            client = Client()
            ok = client.post(
                PATHS["django"], small, content_type="text/plain", headers=signed(small)
            )
            assert ok.status_code == OK_ACK.status_code
            over = client.post(PATHS["django"], small + b"y", content_type="text/plain")
            assert over.status_code == 413
        assert [r.body for r in toy.received] == [small]
    finally:
        set_hub(None)


@pytest.mark.parametrize("bad", [0, "64k", 2**40])
def test_django_refuses_a_meaningless_cap(hub: PayHub, bad: object) -> None:
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(PAYHUB_MAX_NOTIFICATION_BYTES=bad):
        with pytest.raises(ImproperlyConfigured, match="PAYHUB_MAX_NOTIFICATION_BYTES"):
            apps.get_app_config("payhub_django").ready()
        set_hub(hub)
        try:
            with pytest.raises(ImproperlyConfigured):
                Client().post(PATHS["django"], b"x", content_type="text/plain")
        finally:
            set_hub(None)


def test_read_capped_stops_reading_at_the_cap() -> None:
    body = Firehose(HUGE)
    assert read_capped(None, body.read, limit=1000) is None
    assert body.consumed == 1001
    assert read_capped("12", io.BytesIO(b"hello world!").read, limit=12) == b"hello world!"
    assert read_capped("not a number", io.BytesIO(b"abc").read, limit=12) == b"abc"


# -- a real server ------------------------------------------------------------------


class Counting:
    """WSGI middleware: counts the bytes the application read from the socket."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.consumed = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        stream = environ["wsgi.input"]
        outer = self

        class Reader(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                data = stream.read(len(buffer))
                buffer[: len(data)] = data
                outer.consumed += len(data)
                return len(data)

        environ["wsgi.input"] = io.BufferedReader(Reader(), buffer_size=1)
        return self.app(environ, start_response)


@contextmanager
def serving(app: WSGIApp) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join(5)


def _status_after(port: int, head: bytes, body_parts: list[bytes]) -> int:
    """Send the head and only these body parts (never the rest), then read the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        reply = sock.recv(4096)
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_a_real_server_answers_413_before_the_body_is_sent(
    framework: str, hub: PayHub, toy: ToyChannel
) -> None:
    set_hub(hub)
    try:
        app = Counting(flask_app(hub) if framework == "flask" else WSGIHandler())
        head = (
            f"POST {PATHS[framework]} HTTP/1.1\r\nHost: testserver\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {HUGE}\r\n\r\n"
        ).encode()
        with serving(app) as port:
            # 1 KiB of a declared 50 MB: the answer comes without waiting for the rest.
            assert _status_after(port, head, [b"a" * 1024]) == 413
        assert app.consumed == 0
        assert toy.received == []
    finally:
        set_hub(None)


def test_a_real_server_stops_reading_a_chunked_body_at_the_cap(
    hub: PayHub, toy: ToyChannel
) -> None:
    app = Counting(flask_app(hub))
    head = (
        f"POST {PATHS['flask']} HTTP/1.1\r\nHost: testserver\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"a" * 16384
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 8  # 128 KiB, and no last chunk
    with serving(app) as port:
        assert _status_after(port, head, parts) == 413
    assert CAP < app.consumed <= CAP + 1
    assert toy.received == []


def test_a_real_server_passes_a_normal_notification(hub: PayHub, toy: ToyChannel) -> None:
    app = Counting(flask_app(hub))
    body = b"trade_status=TRADE_SUCCESS&sign=x"
    head = (
        f"POST {PATHS['flask']} HTTP/1.1\r\nHost: testserver\r\nContent-Length: {len(body)}\r\n"
        f"X-Toy-Signature: {sign(body)}\r\n\r\n"
    ).encode()
    with serving(app) as port:
        assert _status_after(port, head, [body]) == OK_ACK.status_code
    assert [r.body for r in toy.received] == [body]
