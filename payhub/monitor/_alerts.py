"""Alerts to group robots (DingTalk, Feishu, WeCom) and a generic webhook:
their documented message formats and signatures, rate-limited and
de-duplicated, with no secret in a message or a log line.

The robots' keys travel in the URL (WeCom ``?key=``, DingTalk
``?access_token=``): the URL is a :class:`~payhub.config.Secret`, and requests
go straight to an httpx *transport*, not through ``httpx.Client``, whose INFO
log line names the full URL. Failures are logged with the sink's kind and the
HTTP status only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from payhub.config import Secret, validated
from payhub.errors import ConfigurationError

__all__ = [
    "Alert",
    "AlertSink",
    "Alerter",
    "DingTalkSink",
    "FeishuSink",
    "WeComSink",
    "WebhookSink",
    "dingtalk_sign",
    "feishu_sign",
]

logger = logging.getLogger("payhub.monitor")


@dataclass(frozen=True)
class Alert:
    """One alert: ``key`` identifies what it is about (de-duplication)."""

    key: str
    title: str
    text: str
    severity: Literal["warning", "critical"] = "warning"

    def plain(self) -> str:
        return f"[payhub {self.severity}] {self.title}\n{self.text}"


class AlertSink(Protocol):
    kind: str

    def send(self, alert: Alert) -> bool:
        """Deliver ``alert``; True if the receiver accepted it. Never raises."""
        ...


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's signed webhook: HMAC-SHA256 keyed with the secret over
    ``"{timestamp}\\n{secret}"``, base64, then URL-encoded (the ``sign`` parameter)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(timestamp_s: int, secret: str) -> str:
    """Feishu's signature: HMAC-SHA256 *keyed with* ``"{timestamp}\\n{secret}"``
    over an empty message, base64 (the ``sign`` field of the body)."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class _HttpSink:
    kind = "webhook"

    def __init__(
        self,
        url: Secret,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._transport = transport or httpx.HTTPTransport()
        self._timeout = timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _post(self, url: str, body: dict[str, Any], headers: Mapping[str, str] = {}) -> bool:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = httpx.Request(
            "POST",
            url,
            content=content,
            headers={"Content-Type": "application/json; charset=utf-8", **headers},
            extensions={"timeout": httpx.Timeout(self._timeout).as_dict()},
        )
        try:
            response = self._transport.handle_request(request)
            try:
                raw = response.read()
            finally:
                response.close()
        except httpx.HTTPError as exc:
            logger.warning("alert to %s failed: %s", self.kind, type(exc).__name__)
            return False
        ok = 200 <= response.status_code < 300 and self._accepted(raw)
        if not ok:
            logger.warning("alert to %s refused: HTTP %s", self.kind, response.status_code)
        return ok

    def _accepted(self, raw: bytes) -> bool:
        return True


class _RobotSink(_HttpSink):
    """The robots answer 200 with an error code in the body."""

    _code_field = "errcode"

    def _accepted(self, raw: bytes) -> bool:
        try:
            data = json.loads(raw)
        except ValueError:
            return False
        code = data.get(self._code_field, data.get("StatusCode"))
        return isinstance(data, dict) and code in (0, "0")


class DingTalkSink(_RobotSink):
    """DingTalk group robot (``https://oapi.dingtalk.com/robot/send?access_token=…``),
    markdown message; with ``secret`` (加签) the ``timestamp`` (ms) and ``sign``
    query parameters are added."""

    kind = "dingtalk"

    def __init__(self, url: Secret, secret: Secret | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        self._secret = secret

    def send(self, alert: Alert) -> bool:
        url = self._url.get_text()
        if self._secret is not None:
            ts = int(self._clock() * 1000)
            sign = dingtalk_sign(ts, self._secret.get_text())
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={sign}"
        body = {
            "msgtype": "markdown",
            "markdown": {"title": alert.title, "text": f"### {alert.title}\n\n{alert.text}"},
        }
        return self._post(url, body)


class FeishuSink(_RobotSink):
    """Feishu (Lark) group robot (``https://open.feishu.cn/open-apis/bot/v2/hook/…``),
    text message; with ``secret`` the body carries ``timestamp`` (s) and ``sign``."""

    kind = "feishu"
    _code_field = "code"

    def __init__(self, url: Secret, secret: Secret | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        self._secret = secret

    def send(self, alert: Alert) -> bool:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": alert.plain()}}
        if self._secret is not None:
            ts = int(self._clock())
            body = {"timestamp": str(ts), "sign": feishu_sign(ts, self._secret.get_text()), **body}
        return self._post(self._url.get_text(), body)


class WeComSink(_RobotSink):
    """WeCom (企业微信) group robot (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``),
    markdown message (content at most 4096 bytes: longer text is cut)."""

    kind = "wecom"

    def send(self, alert: Alert) -> bool:
        colour = "warning" if alert.severity == "critical" else "comment"
        content = f'**<font color="{colour}">{alert.title}</font>**\n{alert.text}'
        data = content.encode("utf-8")[:4096].decode("utf-8", "ignore")
        body = {"msgtype": "markdown", "markdown": {"content": data}}
        return self._post(self._url.get_text(), body)


class WebhookSink(_HttpSink):
    """Any HTTPS endpoint: ``{"key", "title", "text", "severity", "at"}`` as JSON;
    with ``secret``, header ``X-Payhub-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">`` (verify with a constant-time compare)."""

    kind = "webhook"

    def __init__(self, url: Secret, secret: Secret | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        self._secret = secret

    def send(self, alert: Alert) -> bool:
        ts = int(self._clock())
        body = {
            "key": alert.key, "title": alert.title, "text": alert.text,
            "severity": alert.severity, "at": ts,
        }
        headers: dict[str, str] = {}
        if self._secret is not None:
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
            mac = hmac.new(self._secret.get(), f"{ts}.".encode() + raw, hashlib.sha256)
            headers["X-Payhub-Signature"] = f"t={ts},v1={mac.hexdigest()}"
        return self._post(self._url.get_text(), body, headers)


def _sink(cfg: _SinkConfig) -> AlertSink:
    if cfg.type == "wecom":
        if cfg.secret is not None:
            raise ConfigurationError(
                "alerts: a WeCom robot has no signing secret (its key is in the URL)"
            )
        return WeComSink(cfg.url)
    kinds: dict[str, type[DingTalkSink | FeishuSink | WebhookSink]] = {
        "dingtalk": DingTalkSink, "feishu": FeishuSink, "webhook": WebhookSink,
    }
    return kinds[cfg.type](cfg.url, cfg.secret)


class _SinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["dingtalk", "feishu", "wecom", "webhook"]
    url: Secret
    secret: Secret | None = None


class _AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sinks: tuple[_SinkConfig, ...] = Field(min_length=1)
    #: the same alert (key) is not sent again within this many seconds
    repeat_after: int = Field(default=3600, ge=0)
    #: at most this many alerts per hour, all sinks together
    max_per_hour: int = Field(default=20, ge=1)
    #: keeps what was sent between runs (``payhub health --alert`` from cron)
    state_path: str | None = None


class Alerter:
    """Sends alerts to every sink, once per ``repeat_after`` per key, at most
    ``max_per_hour``. The record of what was sent lives in memory, or in
    ``state_path`` (JSON) to outlive the process."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        repeat_after: float = 3600,
        max_per_hour: int = 20,
        state_path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not sinks:
            raise ConfigurationError("alerts: configure at least one sink")
        self.sinks = list(sinks)
        self.repeat_after = repeat_after
        self.max_per_hour = max_per_hour
        self._path = None if state_path is None else Path(state_path)
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: dict[str, float] = {}
        self._recent: list[float] = []

    @classmethod
    def from_config(cls, config: object, **options: Any) -> Alerter:
        cfg = validated(_AlertsConfig, config, "alerts")
        sinks = [_sink(s) for s in cfg.sinks]
        return cls(
            sinks, repeat_after=cfg.repeat_after, max_per_hour=cfg.max_per_hour,
            state_path=cfg.state_path, **options,
        )

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            self._sent = {str(k): float(v) for k, v in data.get("sent", {}).items()}
            self._recent = [float(t) for t in data.get("recent", [])]
        except (OSError, ValueError, AttributeError):
            logger.warning("alerts: state file unreadable; starting afresh")

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sent": self._sent, "recent": self._recent}), encoding="utf-8")
        tmp.replace(self._path)

    def send(self, alerts: Sequence[Alert]) -> dict[str, str]:
        """Send what is due; ``{key: "sent" | "failed" | "duplicate" | "rate_limited"}``."""
        outcome: dict[str, str] = {}
        with self._lock:
            self._load()
            now = self._clock()
            self._recent = [t for t in self._recent if t > now - 3600]
            for alert in alerts:
                last = self._sent.get(alert.key)
                if last is not None and now - last < self.repeat_after:
                    outcome[alert.key] = "duplicate"
                    continue
                if len(self._recent) >= self.max_per_hour:
                    outcome[alert.key] = "rate_limited"
                    continue
                delivered = [sink.send(alert) for sink in self.sinks]
                if any(delivered):
                    self._sent[alert.key] = now
                    self._recent.append(now)
                outcome[alert.key] = "sent" if all(delivered) else "failed"
            self._save()
        return outcome
