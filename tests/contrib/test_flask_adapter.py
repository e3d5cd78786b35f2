"""flask_payhub, through Flask's own test client."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
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
from flask import Flask, redirect
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from flask_payhub import PayHubExtension, ReturnOutcome, current_hub

from payhub import ConfigurationError, Money, PayHub, PaymentRequest, PaymentState, PayMethod
from payhub.store import Store


@pytest.fixture
def toy() -> ToyChannel:
    return ToyChannel("toy")


@pytest.fixture
def hub(toy: ToyChannel) -> Iterator[PayHub]:
    with PayHub(channels=[toy, ToyChannel("quiet", empty_ack=True)]) as hub:
        yield hub


@pytest.fixture
def app(hub: PayHub) -> Flask:
    app = Flask(__name__)
    PayHubExtension(app, hub=hub)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- notifications --------------------------------------------------------------


def test_success_returns_the_channels_exact_ack(client: FlaskClient) -> None:
    body = b'{"paid": true}'
    response = client.post("/payhub/notify/toy", data=body, headers=signed(body))
    assert response.status_code == OK_ACK.status_code == 200
    assert response.data == b"toy-ok"
    assert response.headers["Content-Type"] == "text/x-toy; charset=ascii"


def test_failure_returns_the_channels_exact_failure_ack(client: FlaskClient) -> None:
    body = b'{"paid": true}'
    response = client.post("/payhub/notify/toy", data=body, headers={"X-Toy-Signature": "forged"})
    assert response.status_code == FAIL_ACK.status_code == 400
    assert response.data == b"toy-fail"
    assert response.headers["Content-Type"] == "application/x-toy-fail"


def test_an_ack_without_content_type_gets_none(client: FlaskClient) -> None:
    body = b"{}"
    response = client.post("/payhub/notify/quiet", data=body, headers=signed(body))
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize("body", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_raw_body_reaches_the_channel_byte_for_byte(
    client: FlaskClient, toy: ToyChannel, body: bytes
) -> None:
    response = client.post("/payhub/notify/toy", data=body, headers=signed(body))
    assert response.data == b"toy-ok"
    assert toy.received[-1].body == body


@pytest.mark.parametrize(
    ("body", "content_type"), [(FORM_BODY, FORM_TYPE), (MULTIPART_BODY, MULTIPART_TYPE)]
)
def test_form_bodies_are_not_parsed_first(
    app: Flask, client: FlaskClient, toy: ToyChannel, body: bytes, content_type: str
) -> None:
    seen: list[object] = []

    @app.after_request
    def peek(response: Any) -> Any:
        from flask import request

        # werkzeug keeps a parsed form and a cached body in the instance dict
        seen.extend(k for k in ("form", "files", "_cached_data") if k in vars(request))
        return response

    response = client.post(
        "/payhub/notify/toy", data=body, content_type=content_type, headers=signed(body)
    )
    assert response.data == b"toy-ok"
    assert toy.received[-1].body == body
    assert toy.received[-1].headers["Content-Type"] == content_type
    assert seen == [], "the body was neither cached nor form-parsed"


def test_a_body_form_parsed_by_a_hook_is_an_error_not_a_refusal(
    app: Flask, client: FlaskClient, toy: ToyChannel, caplog: pytest.LogCaptureFixture
) -> None:
    @app.before_request
    def log_form() -> None:
        from flask import request

        request.form.get("trade_status")

    response = client.post(
        "/payhub/notify/toy", data=FORM_BODY, content_type=FORM_TYPE, headers=signed(FORM_BODY)
    )
    # a 500 the channel retries, and a log that says why; not a failure ack forever
    assert response.status_code == 500
    assert "form-parsed" in caplog.text
    assert toy.received == []


def test_every_header_reaches_the_channel_repeats_included(
    client: FlaskClient, toy: ToyChannel
) -> None:
    body = b"{}"
    headers = [
        *signed(body).items(),
        ("X-Toy-Tag", "first"),
        ("X-Toy-Tag", "second"),
        ("X-Toy-Note", "caf\xe9"),  # one byte 0xE9 on the wire (WSGI: ISO-8859-1)
    ]
    response = client.post("/payhub/notify/toy", data=body, headers=headers)
    assert response.data == b"toy-ok"
    seen = toy.received[-1].headers
    # WSGI joins a repeated header into one value; nothing is lost or reordered.
    assert seen.get_list("X-Toy-Tag", split_commas=True) == ["first", "second"]
    assert (b"x-toy-note", b"caf\xe9") in [(k.lower(), v) for k, v in seen.raw]
    assert seen["X-Toy-Signature"] == signed(body)["X-Toy-Signature"]
    assert seen["Content-Length"] == "2"


def test_a_get_notification_is_its_raw_query_string_verified_like_a_body(
    client: FlaskClient, toy: ToyChannel
) -> None:
    """EPay (易支付) notifies with a GET: the signed form is the query string."""
    query = b"out_trade_no=A1&name=VIP+%E4%BC%9A%E5%91%98&money=1.00"
    response = client.get("/payhub/notify/toy?" + query.decode(), headers=signed(query))
    assert (response.status_code, response.data) == (200, b"toy-ok")
    assert toy.received[-1].body == query  # byte for byte, '+' and escapes kept
    forged = client.get("/payhub/notify/toy?" + query.decode(), headers=signed(b"other"))
    assert (forged.status_code, forged.data) == (400, b"toy-fail")
    assert client.put("/payhub/notify/toy").status_code == 405


def test_unknown_channel_is_404_not_500(client: FlaskClient, toy: ToyChannel) -> None:
    body = b"{}"
    response = client.post("/payhub/notify/nope", data=body, headers=signed(body))
    assert response.status_code == 404
    assert toy.received == []


def test_a_notification_is_applied_through_the_store(toy: ToyChannel, store: Store) -> None:
    request = PaymentRequest(
        out_trade_no="F1", amount=Money(1000), subject="card", method=PayMethod.QR
    )
    store.begin_payment(request)
    with PayHub(channels=[toy], store=store) as hub:
        client = Flask(__name__).test_client()
        PayHubExtension(client.application, hub=hub)
        body = b"trade=F1"
        for _ in range(2):  # the resend is a duplicate: acked, changes nothing
            response = client.post(
                "/payhub/notify/toy", data=body, headers=signed(body, trade="F1")
            )
            assert (response.status_code, response.data) == (200, b"toy-ok")
    record = store.payment("F1")
    assert record is not None
    assert record.status is PaymentState.PAID


# -- browser returns -----------------------------------------------------------


def test_verified_return_renders_the_default_page(client: FlaskClient) -> None:
    response = client.get("/payhub/return/toy", query_string=return_params("R1"))
    assert response.status_code == 200
    assert "R1" in response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_forged_return_is_refused(client: FlaskClient) -> None:
    params = {**return_params("R1"), "out_trade_no": "R2"}
    assert client.get("/payhub/return/toy", query_string=params).status_code == 400


def test_a_repeated_return_parameter_is_refused(client: FlaskClient) -> None:
    params = [*return_params("R1").items(), ("out_trade_no", "R2")]
    assert client.get("/payhub/return/toy", query_string=params).status_code == 400


def test_return_handler_decides_the_answer_and_a_post_return_works(hub: PayHub) -> None:
    outcomes: list[ReturnOutcome] = []

    def on_return(outcome: ReturnOutcome) -> ResponseReturnValue:
        outcomes.append(outcome)
        return redirect(f"/orders/{outcome.params.get('out_trade_no')}")

    app = Flask(__name__)
    PayHubExtension(app, hub=hub, on_return=on_return, url_prefix="/pay")
    client = app.test_client()
    response = client.post("/pay/return/toy", data=return_params("R9"))  # UnionPay's way
    assert (response.status_code, response.headers["Location"]) == (302, "/orders/R9")
    assert outcomes[0].verified
    assert outcomes[0].info is not None
    assert outcomes[0].info.out_trade_no == "R9"
    client.get("/pay/return/toy", query_string={"out_trade_no": "R9", "sign": "x"})
    assert not outcomes[1].verified
    assert outcomes[1].error is not None
    assert client.get("/pay/return/nope").status_code == 404


def test_a_return_never_credits(toy: ToyChannel, store: Store) -> None:
    request = PaymentRequest(
        out_trade_no="R5", amount=Money(1000), subject="card", method=PayMethod.QR
    )
    store.begin_payment(request)
    with PayHub(channels=[toy], store=store) as hub:
        client = Flask(__name__).test_client()
        PayHubExtension(client.application, hub=hub)
        response = client.get("/payhub/return/toy", query_string=return_params("R5"))
        assert response.status_code == 200
    record = store.payment("R5")
    assert record is not None
    assert record.status is PaymentState.PENDING


# -- configuration and the hub's lifetime ------------------------------------


def test_hub_from_app_config(merchant_keys: Any, platform_keys: Any) -> None:
    app = Flask(__name__)
    app.config["PAYHUB"] = alipay_config(merchant_keys, platform_keys)
    PayHubExtension(app)
    with app.app_context():
        assert list(current_hub().channels) == ["alipay"]
    response = app.test_client().post("/payhub/notify/alipay", data=b"sign=forged")
    # Alipay's own failure answer, so it resends
    assert (response.status_code, response.data) == (200, b"fail")


def test_hub_from_a_json_file(tmp_path: Path, merchant_keys: Any, platform_keys: Any) -> None:
    path = tmp_path / "payhub.json"
    path.write_text(json.dumps(alipay_config(merchant_keys, platform_keys)), encoding="utf-8")
    app = Flask(__name__)
    app.config["PAYHUB_CONFIG_FILE"] = str(path)
    ext = PayHubExtension()
    ext.init_app(app)
    with app.app_context():
        assert list(current_hub().channels) == ["alipay"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "set app.config"),
        ({"PAYHUB": {"channels": {}}, "PAYHUB_CONFIG_FILE": "x.json"}, "not both"),
        ({"PAYHUB": ["alipay"]}, "must be a mapping"),
        ({"PAYHUB_CONFIG_FILE": "/nonexistent/payhub.json"}, "/nonexistent/payhub.json"),
        ({"PAYHUB_RETURN_HANDLER": "shop.views:back"}, "must be callable"),
    ],
)
def test_bad_configuration_fails_at_setup(config: dict[str, Any], message: str) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=message):
        PayHubExtension(app)


def test_one_hub_per_app_kept_across_requests(hub: PayHub, client: FlaskClient) -> None:
    app = client.application
    seen: list[PayHub] = []

    @app.get("/which")
    def which() -> str:
        seen.append(current_hub())
        return ""

    client.get("/which")
    client.get("/which")
    assert seen == [hub, hub]
    assert app.extensions["payhub"] is hub
    assert not hub._http.is_closed, "request teardown does not close the hub"


def test_a_built_hub_is_closed_with_its_app(merchant_keys: Any, platform_keys: Any) -> None:
    app = Flask(__name__)
    app.config["PAYHUB"] = alipay_config(merchant_keys, platform_keys)
    PayHubExtension(app)
    app.test_client().post("/payhub/notify/alipay", data=b"")
    hub = app.extensions["payhub"]
    assert not hub._http.is_closed
    del app
    gc.collect()
    assert hub._http.is_closed


def test_an_injected_hub_is_left_open(hub: PayHub) -> None:
    app = Flask(__name__)
    PayHubExtension(app, hub=hub)
    del app
    gc.collect()
    assert not hub._http.is_closed


def test_one_extension_serves_several_apps(hub: PayHub) -> None:
    ext = PayHubExtension(hub=hub)
    first, second = Flask("first"), Flask("second")
    ext.init_app(first)
    ext.init_app(second, url_prefix="/other")
    assert first.test_client().get("/payhub/return/toy").status_code == 400
    assert second.test_client().get("/other/return/toy").status_code == 400
    with pytest.raises(RuntimeError, match="already set up"):
        ext.init_app(first)


def test_current_hub_needs_the_extension() -> None:
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="PayHubExtension"):
        current_hub()
