"""An independent, minimal Alipay client for testing the sandbox.

Written from PROTOCOLS.md with ``cryptography`` directly: it shares no code with
``payhub.signing``, ``payhub.channels`` or the sandbox, so a misreading in any
of them is not mirrored here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CST = timezone(timedelta(hours=8))
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "RSA2": hashes.SHA256,
    "RSA": hashes.SHA1,
}

Transport = Literal["get", "post", "split"]


def content_to_sign(params: Mapping[str, str], *, drop: tuple[str, ...] = ("sign",)) -> str:
    return "&".join(
        f"{k}={params[k]}"
        for k in sorted(params, key=lambda k: k.encode())
        if k not in drop and params[k] != ""
    )


def rsa_sign(key: rsa.RSAPrivateKey, data: bytes, sign_type: str = "RSA2") -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), HASHES[sign_type]())).decode()


def rsa_verifies(
    key: rsa.RSAPublicKey, data: bytes, signature: str, sign_type: str = "RSA2"
) -> bool:
    try:
        key.verify(base64.b64decode(signature), data, padding.PKCS1v15(), HASHES[sign_type]())
    except (InvalidSignature, ValueError):
        return False
    return True


def extract_node(body: str, name: str) -> tuple[str, int]:
    """The raw text of the value of ``"name":`` (a JSON object), and where it ends."""
    marker = f'"{name}":'
    start = body.index(marker) + len(marker)
    if body[start] != "{":
        raise ValueError("node is not an object")
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(body)):
        ch = body[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return body[start : i + 1], i + 1
    raise ValueError("unterminated node")


@dataclass
class Reply:
    http: httpx.Response
    name: str
    raw_node: str
    node: dict[str, Any]
    sign: str
    raw_node_bytes: bytes

    @property
    def code(self) -> str:
        return str(self.node["code"])

    @property
    def sub_code(self) -> str | None:
        return self.node.get("sub_code")

    def verifies(self, key: rsa.RSAPublicKey, sign_type: str = "RSA2") -> bool:
        return rsa_verifies(key, self.raw_node_bytes, self.sign, sign_type)


def parse_reply(response: httpx.Response, method: str) -> Reply:
    charset = response.headers.get("content-type", "").partition("charset=")[2] or "utf-8"
    body = response.content.decode(charset)
    data = json.loads(body)
    name = method.replace(".", "_") + "_response"
    if name not in data:
        name = "error_response"
    raw, _ = extract_node(body, name)
    sign = data.get("sign", "")
    return Reply(
        http=response,
        name=name,
        raw_node=raw,
        node=data[name],
        sign=sign,
        raw_node_bytes=raw.encode(charset),
    )


class AlipayWireClient:
    """Builds, signs and sends gateway requests the way various real clients do."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        app_id: str,
        private_key: rsa.RSAPrivateKey,
        now: Callable[[], datetime],
        sign_type: str = "RSA2",
        charset: str = "utf-8",
        gateway: str = "/gateway.do",
    ) -> None:
        self.http = http
        self.app_id = app_id
        self.key = private_key
        self.now = now
        self.sign_type = sign_type
        self.charset = charset
        self.gateway = gateway

    def params(
        self, method: str, biz: Mapping[str, Any] | str | None = None, **extra: str
    ) -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": self.charset,
            "sign_type": self.sign_type,
            "timestamp": self.now().astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
        }
        if biz is not None:
            params["biz_content"] = (
                biz if isinstance(biz, str) else json.dumps(biz, ensure_ascii=False)
            )
        params.update(extra)
        return params

    def signed(
        self, params: Mapping[str, str], key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, str]:
        out = dict(params)
        content = content_to_sign(out)
        out["sign"] = rsa_sign(key or self.key, content.encode(self.charset), self.sign_type)
        return out

    def send(self, params: Mapping[str, str], transport: Transport = "post") -> httpx.Response:
        if transport == "get":
            query = urlencode(params, encoding=self.charset)
            return self.http.get(f"{self.gateway}?{query}")
        if transport == "post":
            body = urlencode(params, encoding=self.charset).encode("ascii")
            return self.http.post(
                self.gateway,
                content=body,
                headers={
                    "Content-Type": f"application/x-www-form-urlencoded;charset={self.charset}"
                },
            )
        common = {k: v for k, v in params.items() if k != "biz_content"}
        rest = {k: v for k, v in params.items() if k == "biz_content"}
        query = urlencode(common, encoding=self.charset)
        return self.http.post(
            f"{self.gateway}?{query}",
            content=urlencode(rest, encoding=self.charset).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def call(
        self,
        method: str,
        biz: Mapping[str, Any] | str | None = None,
        *,
        transport: Transport = "post",
        **extra: str,
    ) -> Reply:
        response = self.send(self.signed(self.params(method, biz, **extra)), transport)
        assert response.status_code == 200, response.text
        return parse_reply(response, method)


def parse_form(body: bytes) -> dict[str, str]:
    """Decode a notification or return query by its signed ``charset`` field."""
    text = body.decode("ascii")
    first = dict(parse_qsl(text, keep_blank_values=True, encoding="latin-1"))
    charset = first.get("charset", "utf-8")
    return dict(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict"))


def notification_verifies(
    fields: Mapping[str, str], key: rsa.RSAPublicKey, sign_type: str = "RSA2"
) -> bool:
    content = content_to_sign(fields, drop=("sign", "sign_type"))
    charset = fields.get("charset", "utf-8")
    return rsa_verifies(key, content.encode(charset), fields.get("sign", ""), sign_type)
