"""payhub_django, through Django's own test client (and its ASGI handler).

Django is configured in ``conftest.py``; the URLconf is ``contrib_urls.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from adapterkit import (
    FAIL_ACK,
    FORM_BODY,
    FORM_TYPE,
    MULTIPART_BODY,
    MULTIPART_TYPE,
    OK_ACK,
    RAW_BODIES,
    ToyChannel,
    alipay_config,
    return_params,
    signed,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.dispatch import Signal
from django.test import Client, override_settings
from django.urls import reverse
from payhub_django import ReturnOutcome, get_hub, set_hub, signals

from payhub import Event, EventType, Money, PayHub, PaymentRequest, PaymentState, PayMethod
from payhub.store import Store


@pytest.fixture
def toy() -> ToyChannel:
    return ToyChannel("toy")


@pytest.fixture
def hub(toy: ToyChannel) -> Iterator[PayHub]:
    with PayHub(channels=[toy, ToyChannel("quiet", empty_ack=True)]) as hub:
        set_hub(hub)
        yield hub
        set_hub(None)


@pytest.fixture
def client(hub: PayHub) -> Client:
    return Client()


def notify_url(channel: str) -> str:
    return reverse("payhub:notify", args=[channel])


# -- notifications --------------------------------------------------------------


def test_urls_are_named() -> None:
    assert notify_url("toy") == "/payhub/notify/toy/"
    assert reverse("payhub:return", args=["toy"]) == "/payhub/return/toy/"


def test_success_returns_the_channels_exact_ack(client: Client) -> None:
    body = b'{"paid": true}'
    response = client.post(
        notify_url("toy"), body, content_type="application/json", headers=signed(body)
    )
    assert response.status_code == OK_ACK.status_code == 200
    assert response.content == b"toy-ok"
    assert response["Content-Type"] == "text/x-toy; charset=ascii"


def test_failure_returns_the_channels_exact_failure_ack(client: Client) -> None:
    body = b'{"paid": true}'
    response = client.post(
        notify_url("toy"),
        body,
        content_type="application/json",
        headers={"X-Toy-Signature": "forged"},
    )
    assert response.status_code == FAIL_ACK.status_code == 400
    assert response.content == b"toy-fail"
    assert response["Content-Type"] == "application/x-toy-fail"


def test_an_ack_without_content_type_gets_none(client: Client) -> None:
    body = b"{}"
    response = client.post(
        notify_url("quiet"), body, content_type="application/json", headers=signed(body)
    )
    assert response.status_code == 204
    assert response.content == b""
    assert not response.has_header("Content-Type")


@pytest.mark.parametrize("body", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_raw_body_reaches_the_channel_byte_for_byte(
    client: Client, toy: ToyChannel, body: bytes
) -> None:
    response = client.post(
        notify_url("toy"), body, content_type="application/octet-stream", headers=signed(body)
    )
    assert response.content == b"toy-ok"
    assert toy.received[-1].body == body


@pytest.mark.parametrize(
    ("body", "content_type"), [(FORM_BODY, FORM_TYPE), (MULTIPART_BODY, MULTIPART_TYPE)]
)
def test_form_bodies_are_not_parsed_first(
    client: Client, toy: ToyChannel, body: bytes, content_type: str
) -> None:
    response = client.post(notify_url("toy"), body, content_type=content_type, headers=signed(body))
    assert response.content == b"toy-ok"
    assert toy.received[-1].body == body
    assert toy.received[-1].headers["Content-Type"] == content_type
    assert "_post" not in vars(response.wsgi_request), "request.POST was never parsed"


def test_every_header_reaches_the_channel(client: Client, toy: ToyChannel) -> None:
    body = b"{}"
    headers = {
        **signed(body),
        "X-Toy-Tag": "first, second",  # a repeated header, as a WSGI server joins it
        "X-Toy-Note": "caf\xe9",  # one byte 0xE9 on the wire (WSGI: ISO-8859-1)
    }
    response = client.post(notify_url("toy"), body, content_type="text/plain", headers=headers)
    assert response.content == b"toy-ok"
    seen = toy.received[-1].headers
    assert seen.get_list("X-Toy-Tag", split_commas=True) == ["first", "second"]
    assert (b"x-toy-note", b"caf\xe9") in [(k.lower(), v) for k, v in seen.raw]
    assert seen["Content-Type"] == "text/plain"
    assert seen["Content-Length"] == "2"


def asgi_post(path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    """POST through Django's ASGI handler, where a header may really be repeated."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> dict[str, Any]:
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if incoming:
                return incoming.pop()
            await asyncio.Event().wait()  # the channel stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await ASGIHandler()(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return {"status": start["status"], "headers": start["headers"], "body": content}

    return asyncio.run(run())


def test_repeated_headers_reach_the_channel_under_asgi(hub: PayHub, toy: ToyChannel) -> None:
    body = b"a=1+2&b=%2B"
    headers = [
        (b"x-toy-signature", signed(body)["X-Toy-Signature"].encode()),
        (b"content-type", FORM_TYPE.encode()),
        (b"x-toy-tag", b"first"),
        (b"x-toy-tag", b"second"),
        (b"x-toy-note", b"caf\xe9"),
    ]
    response = asgi_post(notify_url("toy"), headers, body)
    assert (response["status"], response["body"]) == (200, b"toy-ok")
    assert (b"Content-Type", b"text/x-toy; charset=ascii") in response["headers"]
    seen = toy.received[-1]
    assert seen.body == body
    assert seen.headers.get_list("X-Toy-Tag", split_commas=True) == ["first", "second"]
    assert (b"x-toy-note", b"caf\xe9") in [(k.lower(), v) for k, v in seen.headers.raw]


def test_notifications_are_csrf_exempt(hub: PayHub) -> None:
    client = Client(enforce_csrf_checks=True)
    # the check is on: an ordinary view refuses a POST without a token
    assert client.post("/shop/form/", {"a": "1"}).status_code == 403
    body = FORM_BODY
    response = client.post(notify_url("toy"), body, content_type=FORM_TYPE, headers=signed(body))
    assert (response.status_code, response.content) == (200, b"toy-ok")


def test_a_get_notification_is_its_raw_query_string_verified_like_a_body(
    client: Client, toy: ToyChannel
) -> None:
    """EPay (易支付) notifies with a GET: the signed form is the query string."""
    query = b"out_trade_no=A1&name=VIP+%E4%BC%9A%E5%91%98&money=1.00"
    response = client.get(notify_url("toy") + "?" + query.decode(), headers=signed(query))
    assert (response.status_code, response.content) == (200, b"toy-ok")
    assert toy.received[-1].body == query  # byte for byte, '+' and escapes kept
    forged = client.get(notify_url("toy") + "?" + query.decode(), headers=signed(b"other"))
    assert (forged.status_code, forged.content) == (400, b"toy-fail")
    refused = client.put(notify_url("toy"))
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, POST"


def test_unknown_channel_is_404_not_500(client: Client, toy: ToyChannel) -> None:
    body = b"{}"
    response = client.post(
        notify_url("nope"), body, content_type="text/plain", headers=signed(body)
    )
    assert response.status_code == 404
    assert toy.received == []


# -- browser returns -----------------------------------------------------------


def test_verified_return_renders_the_default_page(client: Client) -> None:
    response = client.get("/payhub/return/toy/", return_params("R1"))
    assert response.status_code == 200
    assert b"R1" in response.content
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_forged_or_ambiguous_return_is_refused(client: Client) -> None:
    forged = {**return_params("R1"), "out_trade_no": "R2"}
    assert client.get("/payhub/return/toy/", forged).status_code == 400
    repeated = {**return_params("R1"), "out_trade_no": ["R1", "R2"]}
    assert client.get("/payhub/return/toy/", repeated).status_code == 400
    assert client.get("/payhub/return/nope/").status_code == 404
    assert client.put("/payhub/return/toy/").status_code == 405


def test_return_handler_from_the_urlconf_and_a_post_return(hub: PayHub) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/shop/back/toy/", return_params("R9"))  # UnionPay's way
    assert (response.status_code, response["Location"]) == (302, "/orders/R9")
    response = client.get("/shop/back/toy/", {"out_trade_no": "R9", "sign": "x"})
    assert response["Location"] == "/orders/unknown"


outcomes: list[ReturnOutcome] = []


def recording_return_handler(request: Any, outcome: ReturnOutcome) -> Any:
    from django.http import HttpResponse

    outcomes.append(outcome)
    return HttpResponse("seen", status=299)


def test_return_handler_from_settings(client: Client) -> None:
    outcomes.clear()
    dotted = f"{__name__}.recording_return_handler"
    with override_settings(PAYHUB_RETURN_HANDLER=dotted):
        response = client.get("/payhub/return/toy/", return_params("R3"))
    assert (response.status_code, response.content) == (299, b"seen")
    assert outcomes[0].verified
    assert outcomes[0].params == return_params("R3")


def test_a_return_never_credits(toy: ToyChannel, store: Store) -> None:
    store.begin_payment(
        PaymentRequest(out_trade_no="R5", amount=Money(1000), subject="card", method=PayMethod.QR)
    )
    with PayHub(channels=[toy], store=store) as hub:
        set_hub(hub)
        try:
            assert Client().get("/payhub/return/toy/", return_params("R5")).status_code == 200
        finally:
            set_hub(None)
    record = store.payment("R5")
    assert record is not None
    assert record.status is PaymentState.PENDING


# -- events as signals -----------------------------------------------------------


@pytest.fixture
def receive() -> Iterator[Callable[[Signal], list[tuple[object, Event]]]]:
    """Connect a recording receiver to a signal for this test."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def connect(signal: Signal) -> list[tuple[object, Event]]:
        got: list[tuple[object, Event]] = []

        def receiver(sender: object, event: Event, **kwargs: object) -> None:
            got.append((sender, event))

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return got

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
def store_hub(toy: ToyChannel, store: Store) -> Iterator[PayHub]:
    store.begin_payment(
        PaymentRequest(out_trade_no="S1", amount=Money(1000), subject="card", method=PayMethod.QR)
    )
    with PayHub(channels=[toy], store=store) as hub:
        set_hub(hub)
        yield hub
        set_hub(None)


def post_paid(out_trade_no: str = "S1") -> Any:
    body = f"trade={out_trade_no}".encode()
    return Client().post(
        notify_url("toy"), body, content_type="text/plain", headers=signed(body, trade=out_trade_no)
    )


def test_events_fire_as_signals(store_hub: PayHub, receive: Any) -> None:
    succeeded = receive(signals.payment_succeeded)
    every = receive(signals.payhub_event)
    refunded = receive(signals.payment_refunded)
    for _ in range(3):  # resends: acked, and no second event
        assert post_paid().content == b"toy-ok"
    assert len(succeeded) == 1
    sender, event = succeeded[0]
    assert sender is store_hub
    assert (event.type, event.out_trade_no) == (EventType.PAYMENT_SUCCEEDED, "S1")
    assert every == succeeded
    assert refunded == []


def test_a_failing_receiver_gets_the_event_again_with_the_same_id(
    store_hub: PayHub, receive: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got = receive(signals.payment_succeeded)
    failures = [RuntimeError("mail server down")]

    def flaky(sender: object, event: Event, **kwargs: object) -> None:
        if failures:
            raise failures.pop()

    signals.payment_succeeded.connect(flaky, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="payhub"):
            response = post_paid()
        # the payment is applied and acked; the event waits for a retry
        assert response.content == b"toy-ok"
        assert "mail server down" in caplog.text
        assert store_hub.dispatch_events() == 1
    finally:
        signals.payment_succeeded.disconnect(flaky)
    assert [e.id for _, e in got] == [got[0][1].id] * 2
    assert got[1][1].attempts == 2


def test_signals_can_be_turned_off(store_hub: PayHub, receive: Any) -> None:
    got = receive(signals.payhub_event)
    with override_settings(PAYHUB_SIGNALS=False):
        assert post_paid().content == b"toy-ok"
        assert got == []
    assert store_hub.dispatch_events() == 1, "the pending event goes out once they are back on"
    assert [e.type for _, e in got] == [EventType.PAYMENT_SUCCEEDED]


def test_set_hub_twice_bridges_once(store_hub: PayHub, receive: Any) -> None:
    got = receive(signals.payment_succeeded)
    set_hub(store_hub)
    post_paid()
    assert len(got) == 1


def test_every_event_type_has_its_signal() -> None:
    assert set(signals.SIGNALS) == set(EventType)
    for event_type, signal in signals.SIGNALS.items():
        assert getattr(signals, event_type.replace(".", "_")) is signal


# -- configuration and the hub's lifetime ------------------------------------


def test_hub_is_built_lazily_from_settings_once(merchant_keys: Any, platform_keys: Any) -> None:
    with override_settings(PAYHUB=alipay_config(merchant_keys, platform_keys)):
        hub = get_hub()
        assert get_hub() is hub
        assert list(hub.channels) == ["alipay"]
        response = Client().post(notify_url("alipay"), b"sign=forged", content_type=FORM_TYPE)
        # Alipay's own failure answer, so it resends
        assert (response.status_code, response.content) == (200, b"fail")
        assert response["Content-Type"] == "text/plain"
    assert hub._http.is_closed, "a built hub is closed when the settings change"


def test_missing_or_bad_settings_are_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"settings\.PAYHUB"):
        get_hub()
    with override_settings(PAYHUB={"channels": {}}), pytest.raises(ImproperlyConfigured):
        get_hub()
    with override_settings(PAYHUB="alipay"), pytest.raises(ImproperlyConfigured):
        get_hub()


def test_an_injected_hub_is_left_open(toy: ToyChannel) -> None:
    hub = PayHub(channels=[toy])
    set_hub(hub)
    assert get_hub() is hub
    set_hub(None)
    assert not hub._http.is_closed
    hub.close()


def test_docs_name_every_signal() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "adapters.md").read_text("utf-8")
    for name in signals.__all__:
        if name not in ("SIGNALS", "send_event"):
            assert f"`{name}`" in text, name
