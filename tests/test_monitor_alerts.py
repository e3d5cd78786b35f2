"""Alerts to group robots over real HTTP (local fake robot endpoints that check
the signatures as the robots document them), de-duplicated, rate-limited, and
never logging the robot key that travels in the URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from payhub import ConfigurationError
from payhub.config import Secret
from payhub.monitor import (
    Alert,
    Alerter,
    DingTalkSink,
    FeishuSink,
    WebhookSink,
    WeComSink,
)

TOKEN = "a1b2c3d4e5f6-robot-token"
SECRET = "SECd4f0e9c1b2a3-signing-secret"
NOW = 1_700_000_000.0


class Robot(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    answer: dict[str, Any]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        url = urllib.parse.urlsplit(self.path)
        self.received.append(
            {"path": url.path, "query": urllib.parse.parse_qs(url.query), "body": body,
             "headers": dict(self.headers), "raw_query": url.query}
        )
        out = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def robot() -> Iterator[tuple[str, type[Robot]]]:
    handler = type("R", (Robot,), {"received": [], "answer": {"errcode": 0, "errmsg": "ok"}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


ALERT = Alert(key="health:pending_payments", title="积压订单", text="当前积压订单 1,243 笔")


def test_dingtalk_signed_webhook_as_documented(robot, caplog) -> None:  # type: ignore[no-untyped-def]
    base, handler = robot
    caplog.set_level(logging.DEBUG)
    sink = DingTalkSink(
        Secret(f"{base}/robot/send?access_token={TOKEN}".encode()), Secret(SECRET.encode()),
        clock=lambda: NOW,
    )
    assert sink.send(ALERT)
    (got,) = handler.received
    assert got["path"] == "/robot/send"
    assert got["query"]["access_token"] == [TOKEN]
    ts = got["query"]["timestamp"][0]
    assert ts == str(int(NOW * 1000))  # milliseconds
    # sign = urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\n" + secret)))
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert got["query"]["sign"] == [expected]
    assert urllib.parse.quote_plus(expected) in got["raw_query"]
    assert got["body"]["msgtype"] == "markdown"
    assert got["body"]["markdown"]["title"] == "积压订单"
    assert "1,243" in got["body"]["markdown"]["text"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in text
    assert SECRET not in text
    assert TOKEN not in repr(sink)


def test_feishu_signature_keys_hmac_with_timestamp_and_secret(robot) -> None:  # type: ignore[no-untyped-def]
    base, handler = robot
    handler.answer = {"code": 0, "msg": "success", "data": {}}
    sink = FeishuSink(Secret(f"{base}/open-apis/bot/v2/hook/{TOKEN}".encode()),
                      Secret(SECRET.encode()), clock=lambda: NOW)
    assert sink.send(ALERT)
    body = handler.received[0]["body"]
    assert body["timestamp"] == str(int(NOW))  # seconds
    key = f"{int(NOW)}\n{SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "text"
    assert "1,243" in body["content"]["text"]
    assert SECRET not in json.dumps(body)


def test_wecom_markdown_and_a_refusal_in_the_body(robot) -> None:  # type: ignore[no-untyped-def]
    base, handler = robot
    sink = WeComSink(Secret(f"{base}/cgi-bin/webhook/send?key={TOKEN}".encode()))
    assert sink.send(Alert(key="k", title="t", text="x" * 5000, severity="critical"))
    body = handler.received[0]["body"]
    assert body["msgtype"] == "markdown"
    assert len(body["markdown"]["content"].encode()) <= 4096
    handler.answer = {"errcode": 93000, "errmsg": "invalid webhook url"}
    assert not sink.send(ALERT)


def test_generic_webhook_signature(robot) -> None:  # type: ignore[no-untyped-def]
    base, handler = robot
    handler.answer = {}
    sink = WebhookSink(Secret(f"{base}/hook".encode()), Secret(b"whsec"), clock=lambda: NOW)
    assert sink.send(ALERT)
    got = handler.received[0]
    t, v1 = (part.split("=", 1)[1] for part in got["headers"]["X-Payhub-Signature"].split(","))
    raw = json.dumps(got["body"], ensure_ascii=False).encode()
    assert hmac.compare_digest(v1, hmac.new(b"whsec", f"{t}.".encode() + raw,
                                            hashlib.sha256).hexdigest())
    assert got["body"]["key"] == ALERT.key


def test_deduplicated_and_rate_limited_across_runs(robot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, handler = robot
    clock = [NOW]
    config = {"sinks": [{"type": "wecom", "url": f"{base}/send?key={TOKEN}"}],
              "repeat_after": 600, "max_per_hour": 2, "state_path": str(tmp_path / "s.json")}

    def alerter() -> Alerter:  # a new process each time: only the state file carries over
        return Alerter.from_config(config, clock=lambda: clock[0])

    assert alerter().send([ALERT]) == {ALERT.key: "sent"}
    assert alerter().send([ALERT]) == {ALERT.key: "duplicate"}
    other = [Alert(key=f"k{i}", title="t", text="x") for i in range(2)]
    assert alerter().send(other) == {"k0": "sent", "k1": "rate_limited"}
    clock[0] += 3601
    assert alerter().send([ALERT]) == {ALERT.key: "sent"}
    assert len(handler.received) == 3


def test_unreachable_robot_is_a_failure_not_an_exception(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    sink = DingTalkSink(Secret(f"http://127.0.0.1:1/robot/send?access_token={TOKEN}".encode()))
    assert Alerter([sink]).send([ALERT]) == {ALERT.key: "failed"}
    assert TOKEN not in "\n".join(r.getMessage() for r in caplog.records)


def test_bad_alert_configuration() -> None:
    with pytest.raises(ConfigurationError, match="alerts"):
        Alerter.from_config({"sinks": []})
    with pytest.raises(ConfigurationError, match="WeCom"):
        Alerter.from_config({"sinks": [{"type": "wecom", "url": "x", "secret": "y"}]})
