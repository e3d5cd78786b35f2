"""The facade: network errors mapped at the boundary, notifications answered, routing refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Self

import httpx
import pytest

from payhub.channels import Channel, Flow
from payhub.errors import (
    ChannelTimeout,
    ConfigurationError,
    ErrorCode,
    InvalidRequestError,
    NetworkError,
    NoEligibleChannel,
    ProtocolError,
    SignatureError,
    UnknownChannelError,
)
from payhub.hub import AsyncPayHub, PayHub
from payhub.models import (
    Ack,
    Notification,
    NotificationKind,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    ResultKind,
)
from payhub.money import Money

SECRET_SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZS1ieXRlcw=="


class ToyChannel(Channel):
    """A channel whose pay and query flows each make one HTTP request."""

    kind = "toy"
    methods = frozenset({PayMethod.QR, PayMethod.PAGE})

    def __init__(self, name: str, *, currencies: frozenset[str] = frozenset({"CNY"})) -> None:
        super().__init__(name)
        self.currencies = currencies
        self.closed_flows = 0
        self.seen_headers: list[httpx.Headers] = []

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name)

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        try:
            response = yield httpx.Request(
                "POST", "https://toy.example/pay", json={"order": request.out_trade_no}
            )
        finally:
            self.closed_flows += 1
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.QR,
            qr_code=response.json()["qr"],
        )

    def query(self, out_trade_no: str) -> Flow[PaymentQueryResult]:
        response = yield httpx.Request("GET", f"https://toy.example/trade/{out_trade_no}")
        if response.status_code != 200:
            raise ProtocolError(f"{self.name}: HTTP {response.status_code}")
        return PaymentQueryResult(
            channel=self.name, out_trade_no=out_trade_no, status=PaymentStatus.PAID
        )

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        raise NotImplementedError

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        raise NotImplementedError

    def close(self, out_trade_no: str) -> Flow[None]:
        yield httpx.Request("POST", f"https://toy.example/trade/{out_trade_no}/close")

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        self.seen_headers.append(headers)
        if headers.get("X-Toy-Signature") != "good":
            raise SignatureError("signature does not verify")
        return Notification(
            channel=self.name,
            kind=NotificationKind.PAYMENT,
            out_trade_no=body.decode(),
            channel_trade_id="T-1",
            amount=Money(100),
            status=PaymentStatus.PAID,
            event_key=f"{self.name}:{body.decode()}",
            raw={},
            raw_body=body,
        )

    def ack(self, ok: bool, message: str = "") -> Ack:
        if ok:
            return Ack(status_code=200, body=b"success", ok=True)
        return Ack(status_code=400, body=f"fail:{message}".encode(), ok=False)


def request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "out_trade_no": "ORDER-1",
        "amount": Money(1000),
        "subject": "Gift card",
        "method": PayMethod.QR,
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


def raising(exc_type: Callable[..., httpx.TransportError]) -> httpx.MockTransport:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=req)

    return httpx.MockTransport(handler)


def answering(qr: str = "toy://qr") -> httpx.MockTransport:
    return httpx.MockTransport(lambda req: httpx.Response(200, json={"qr": qr}))


# -- network errors are mapped at the boundary ----------------------------------------


def test_pay_succeeds_through_mock_transport() -> None:
    with httpx.Client(transport=answering("toy://qr/1")) as http:
        hub = PayHub(channels=[ToyChannel("toy1")], http_client=http)
        assert hub.pay(request()).qr_code == "toy://qr/1"


def test_connect_error_becomes_network_error() -> None:
    channel = ToyChannel("toy1")
    with httpx.Client(transport=raising(httpx.ConnectError)) as http:
        hub = PayHub(channels=[channel], http_client=http)
        with pytest.raises(NetworkError) as info:
            hub.pay(request())
    error = info.value
    assert type(error) is NetworkError  # not a timeout: nothing reached the channel
    assert error.retryable is True
    assert error.code is ErrorCode.NETWORK
    assert "toy1" in error.message
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert channel.closed_flows == 1  # the flow was closed, not left suspended


def test_read_timeout_becomes_channel_timeout() -> None:
    with httpx.Client(transport=raising(httpx.ReadTimeout)) as http:
        hub = PayHub(channels=[ToyChannel("toy1")], http_client=http)
        with pytest.raises(ChannelTimeout) as info:
            hub.pay(request())
    error = info.value
    assert isinstance(error, NetworkError)
    assert error.retryable is True
    assert error.code is ErrorCode.TIMEOUT
    assert "may exist" in error.message
    assert isinstance(error.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize(
    ("exc_type", "expected"),
    [
        (httpx.ConnectError, NetworkError),
        (httpx.ReadError, NetworkError),
        (httpx.RemoteProtocolError, NetworkError),
        (httpx.ReadTimeout, ChannelTimeout),
        (httpx.WriteTimeout, ChannelTimeout),
    ],
)
def test_network_errors_async(
    exc_type: Callable[..., httpx.TransportError], expected: type[NetworkError]
) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=raising(exc_type)) as http:
            hub = AsyncPayHub(channels=[ToyChannel("toy1")], http_client=http)
            await hub.pay(request())

    with pytest.raises(expected) as info:
        asyncio.run(main())
    assert type(info.value) is expected
    assert info.value.retryable is True
    assert isinstance(info.value.__cause__, exc_type)


def test_network_errors_on_every_operation() -> None:
    with httpx.Client(transport=raising(httpx.ConnectError)) as http:
        hub = PayHub(channels=[ToyChannel("toy1")], http_client=http)
        with pytest.raises(NetworkError):
            hub.query("toy1", "ORDER-1")
        with pytest.raises(NetworkError):
            hub.close_trade("toy1", "ORDER-1")


def test_channel_errors_from_the_flow_pass_through() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(502, text="<html>bad gateway"))
    with httpx.Client(transport=transport) as http:
        hub = PayHub(channels=[ToyChannel("toy1")], http_client=http)
        with pytest.raises(ProtocolError):
            hub.query("toy1", "ORDER-1")


# -- notifications ------------------------------------------------------------------


@pytest.mark.parametrize("hub_class", [PayHub, AsyncPayHub])
def test_bad_signature_gives_failure_ack(hub_class: type[PayHub] | type[AsyncPayHub]) -> None:
    hub = hub_class(channels=[ToyChannel("toy1")], http_client=None)
    headers = {"X-Toy-Signature": SECRET_SIGNATURE}
    if isinstance(hub, AsyncPayHub):
        outcome = asyncio.run(hub.handle_notification("toy1", headers, b"ORDER-1"))
    else:
        outcome = hub.handle_notification("toy1", headers, b"ORDER-1")
    assert outcome.accepted is False
    assert outcome.notification is None
    assert isinstance(outcome.error, SignatureError)
    assert outcome.ack.ok is False
    assert outcome.ack.status_code == 400
    # The channel is told a code, not our internal message.
    assert outcome.ack.body == b"fail:SIGNATURE_INVALID"
    assert SECRET_SIGNATURE.encode() not in outcome.ack.body
    if isinstance(hub, AsyncPayHub):
        asyncio.run(hub.aclose())
    else:
        hub.close()


def test_good_notification_gives_success_ack() -> None:
    hub = PayHub(channels=[ToyChannel("toy1")])
    outcome = hub.handle_notification("toy1", {"X-Toy-Signature": "good"}, bytearray(b"ORDER-7"))
    assert outcome.accepted is True
    assert outcome.error is None
    assert outcome.ack == Ack(status_code=200, body=b"success", ok=True)
    assert outcome.notification is not None
    assert outcome.notification.out_trade_no == "ORDER-7"
    assert outcome.notification.raw_body == b"ORDER-7"
    hub.close()


def test_parse_notification_raises_the_typed_error() -> None:
    hub = PayHub(channels=[ToyChannel("toy1")])
    with pytest.raises(SignatureError):
        hub.parse_notification("toy1", {}, b"ORDER-1")
    hub.close()


def test_repeated_headers_reach_the_channel() -> None:
    channel = ToyChannel("toy1")
    hub = PayHub(channels=[channel])
    hub.handle_notification(
        "toy1", [("X-Toy-Signature", "good"), ("X-Toy-Signature", "forged")], b"ORDER-1"
    )
    assert channel.seen_headers[-1].get_list("X-Toy-Signature") == ["good", "forged"]
    hub.close()


# -- channel names and routing ------------------------------------------------------


def test_unknown_channel_name() -> None:
    hub = PayHub(channels=[ToyChannel("toy1")])
    with pytest.raises(UnknownChannelError, match="'nope'"):
        hub.channel("nope")
    with pytest.raises(UnknownChannelError):
        hub.query("nope", "ORDER-1")
    with pytest.raises(UnknownChannelError):
        hub.handle_notification("nope", {}, b"")
    with pytest.raises(UnknownChannelError):
        hub.pay(request(channel="nope"))
    with pytest.raises(KeyError):
        hub.channel("nope")
    hub.close()


def test_duplicate_account_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="toy1"):
        PayHub(channels=[ToyChannel("toy1"), ToyChannel("toy1")])


def test_select_channel_pinned_and_first_eligible() -> None:
    usd = ToyChannel("usd", currencies=frozenset({"USD"}))
    cny = ToyChannel("cny")
    hub = PayHub(channels=[usd, cny])
    assert hub.select_channel(request()) is cny
    assert hub.select_channel(request(amount=Money(100, "USD"))) is usd
    assert hub.select_channel(request(channel="usd", amount=Money(100, "USD"))) is usd
    # A pin does not bypass the support check: a CNY payment cannot go to a USD-only
    # account; the request itself is refused, naming why (issue 11, point 23).
    with pytest.raises(InvalidRequestError, match=r"'usd' cannot take .*CNY") as info:
        hub.select_channel(request(channel="usd"))
    assert not info.value.retryable
    hub.close()


def test_no_eligible_channel_gives_reasons() -> None:
    hub = PayHub(channels=[ToyChannel("toy1"), ToyChannel("usd", currencies=frozenset({"USD"}))])
    with pytest.raises(NoEligibleChannel) as info:
        hub.select_channel(request(method=PayMethod.JSAPI))
    assert set(info.value.reasons) == {"toy1", "usd"}
    assert "jsapi" in info.value.reasons["toy1"]
    assert "CNY" in info.value.reasons["toy1"]
    assert info.value.retryable is False

    with pytest.raises(NoEligibleChannel) as info:
        hub.pay(request(amount=Money(100, "EUR")))
    assert "EUR" in info.value.reasons["usd"]
    hub.close()


def test_context_managers_close_only_owned_clients() -> None:
    with httpx.Client(transport=answering()) as http:
        with PayHub(channels=[ToyChannel("toy1")], http_client=http) as hub:
            hub.pay(request())
        assert not http.is_closed  # the caller's client stays usable
    with PayHub(channels=[ToyChannel("toy1")]) as owned:
        inner = owned._http
    assert inner.is_closed

    async def main() -> None:
        async with httpx.AsyncClient(transport=answering()) as http:
            async with AsyncPayHub(channels=[ToyChannel("toy1")], http_client=http) as hub:
                await hub.pay(request())
            assert not http.is_closed

    asyncio.run(main())


def test_payhub_client_is_a_shim_over_payhub_hub() -> None:
    """Old imports keep working, without a warning (filterwarnings=error)."""
    import payhub.client
    import payhub.hub

    for name in payhub.client.__all__:
        assert getattr(payhub.client, name) is getattr(payhub.hub, name), name
    assert {"AsyncPayHub", "PayHub", "NotificationOutcome", "SyncReport"} <= set(
        payhub.client.__all__
    )
