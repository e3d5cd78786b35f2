"""Request authentication, signed responses, key modes, platform certificates."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sandbox_wechat_client import (
    API_V3_KEY,
    APPID,
    MCHID,
    NOTIFY_URL,
    SCHEME,
    WechatEnv,
    decrypt,
    merchant_certificate,
    public_key_of,
    signed_message,
    verifies,
    verify_platform,
    wechat_env,
)


@pytest.fixture
def env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private)


@pytest.fixture
def cert_env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private, key_mode="certificate")


def _sign_error(response) -> None:
    assert response.status_code == 401, response.text
    data = response.json()
    assert data["code"] == "SIGN_ERROR"
    assert set(data) == {"code", "message"}
    assert data["message"]


# -- the merchant's Authorization --------------------------------------------------------


@pytest.mark.parametrize(
    "order",
    [
        ("serial_no", "timestamp", "signature", "nonce_str", "mchid"),
        ("signature", "mchid", "serial_no", "nonce_str", "timestamp"),
    ],
)
def test_parameters_in_any_order(env: WechatEnv, order) -> None:
    assert env.client.native("ORDER-0001", order=order).status_code == 200
    assert env.client.query("ORDER-0001").status_code == 200
    spaced = env.client.get(
        f"/v3/pay/transactions/out-trade-no/ORDER-0001?mchid={MCHID}", order=order, separator=", "
    )
    assert spaced.status_code == 200


def test_the_body_is_verified_as_received(env: WechatEnv) -> None:
    """Spacing and key order are the client's business; the bytes signed are what count."""
    body = {
        "amount": {"currency": "CNY", "total": 100},
        "out_trade_no": "ORDER-0001",
        "notify_url": NOTIFY_URL,
        "mchid": MCHID,
        "description": "礼品卡",
        "appid": APPID,
    }
    pretty = json.dumps(body, indent=2).encode()  # \uXXXX escapes, newlines
    response = env.client.request("POST", "/v3/pay/transactions/native", raw=pretty)
    assert response.status_code == 200, response.text
    assert env.sandbox.wechat_trade(MCHID, "ORDER-0001").subject == "礼品卡"

    # Signed over one serialization, sent as another: rejected.
    compact = json.dumps({**body, "out_trade_no": "ORDER-0002"}, separators=(",", ":")).encode()
    reserialized = json.dumps(json.loads(compact), ensure_ascii=False).encode()
    response = env.client.request(
        "POST", "/v3/pay/transactions/native", raw=reserialized, sign_body=compact
    )
    _sign_error(response)


def test_bad_signature(env: WechatEnv, other_keys) -> None:
    _sign_error(env.client.native("ORDER-0001", key=other_keys.private))
    target = f"/v3/pay/transactions/out-trade-no/ORDER-0001?mchid={MCHID}"
    # The query string is part of what is signed.
    auth = env.client.authorization("GET", target.replace(MCHID, "1"), b"")
    _sign_error(env.http.get(target, headers={"Authorization": auth}))
    assert env.sandbox.trades == []


def test_unknown_mchid_and_wrong_serial(env: WechatEnv) -> None:
    _sign_error(env.client.native("ORDER-0001", mchid="1999999999"))
    _sign_error(env.client.native("ORDER-0001", serial_no="0123456789ABCDEF"))
    # A lower-case spelling of the right serial is the same serial.
    assert env.client.native("ORDER-0001", serial_no=env.serial_no.lower()).status_code == 200


@pytest.mark.parametrize("offset", [301, -301])
def test_stale_or_future_timestamp(env: WechatEnv, offset: int) -> None:
    stamp = str(int(env.clock.now().timestamp()) + offset)
    _sign_error(env.client.native("ORDER-0001", timestamp=stamp))
    inside = str(int(env.clock.now().timestamp()) + (300 if offset > 0 else -300))
    assert env.client.native("ORDER-0001", timestamp=inside).status_code == 200


@pytest.mark.parametrize(
    "stamp", ["MILLIS", "", "abc", "1.5e9", " 1709258400", "-1", "1709258400.0"]
)
def test_malformed_timestamp(env: WechatEnv, stamp: str) -> None:
    if stamp == "MILLIS":
        stamp = str(int(env.clock.now().timestamp() * 1000))
    _sign_error(env.client.native("ORDER-0001", timestamp=stamp))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000001"',
        "Bearer abc",
        'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",signature="s",'
        'timestamp="1",serial_no="s"',
        'WECHATPAY2-SHA256-RSA2048 mchid=1900000001,nonce_str="n"',
    ],
)
def test_malformed_authorization(env: WechatEnv, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    _sign_error(env.http.get("/v3/certificates", headers=headers))


def test_merchant_registered_with_its_certificate(env: WechatEnv, other_keys) -> None:
    cert = merchant_certificate(other_keys.private, 0x5D2C3B1A7F)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(ValueError, match="serial"):
        env.sandbox.add_wechat_merchant("1900000009", APPID, "ABCDEF", pem, API_V3_KEY)
    merchant = env.sandbox.add_wechat_merchant("1900000009", APPID, "5D2C3B1A7F", pem, API_V3_KEY)
    assert merchant.merchant_serial_no == "5D2C3B1A7F"
    assert "api_v3_key" not in json.dumps(merchant.to_json())
    assert API_V3_KEY.decode() not in repr(merchant)
    with pytest.raises(ValueError, match="32 bytes"):
        env.sandbox.add_wechat_merchant("1900000010", APPID, "5D2C3B1A7F", pem, b"x")


# -- responses -----------------------------------------------------------------------------


def test_public_key_mode_signs_with_the_public_key(env: WechatEnv) -> None:
    response = env.client.native("ORDER-0001")
    assert response.headers["Wechatpay-Serial"] == env.sandbox.wechat_public_key_id
    assert env.sandbox.wechat_public_key_id.startswith("PUB_KEY_ID_")
    assert response.headers["Request-ID"]
    key = public_key_of(env.sandbox.wechat_public_key_pem)
    assert verifies(
        key,
        signed_message(response.headers, response.content),
        response.headers["Wechatpay-Signature"],
    )
    assert abs(int(response.headers["Wechatpay-Timestamp"]) - env.clock.now().timestamp()) <= 1
    # Errors are signed the same way.
    failed = env.client.native("ORDER-0001", timestamp="1")
    assert verifies(
        key, signed_message(failed.headers, failed.content), failed.headers["Wechatpay-Signature"]
    )


def test_certificate_mode_signs_with_the_platform_certificate(cert_env: WechatEnv) -> None:
    env = cert_env
    response = env.client.native("ORDER-0001")
    (serial,) = env.sandbox.wechat_platform_certificate_serials
    assert response.headers["Wechatpay-Serial"] == serial
    assert serial == serial.upper()
    cert = x509.load_pem_x509_certificate(env.sandbox.wechat_platform_certificates_pem[0].encode())
    assert format(cert.serial_number, "X") == serial
    assert verify_platform(response.headers, response.content, env.platform_keys()) == serial
    # The certificate is issued by the sandbox's CA.
    ca = x509.load_pem_x509_certificate(env.sandbox.wechat.engine.ca_certificate_pem.encode())
    cert.verify_directly_issued_by(ca)


def _downloaded(env: WechatEnv) -> dict[str, str]:
    """serial → PEM, from /v3/certificates, decrypted with the API v3 key."""
    response = env.client.get("/v3/certificates")
    assert response.status_code == 200, response.text
    env.verify(response)
    found = {}
    for item in response.json()["data"]:
        block = item["encrypt_certificate"]
        assert block["associated_data"] == "certificate"
        assert item["effective_time"].endswith("+08:00")
        assert item["expire_time"] > item["effective_time"]
        found[item["serial_no"]] = decrypt(API_V3_KEY, block).decode()
    return found


def test_certificates_download(cert_env: WechatEnv) -> None:
    found = _downloaded(cert_env)
    assert list(found) == cert_env.sandbox.wechat_platform_certificate_serials
    assert list(found.values()) == cert_env.sandbox.wechat_platform_certificates_pem


def test_rotation_overlap(cert_env: WechatEnv) -> None:
    env = cert_env
    before = env.client.native("ORDER-0001")
    (old,) = env.sandbox.wechat_platform_certificate_serials
    old_key = public_key_of(_downloaded(env)[old])

    new = env.sandbox.rotate_wechat_platform_certificate()
    assert new != old
    listed = _downloaded(env)
    assert set(listed) == {old, new}  # both served during the overlap
    after = env.client.query("ORDER-0001")
    assert after.headers["Wechatpay-Serial"] == new  # the newest signs
    assert verify_platform(after.headers, after.content, {new: public_key_of(listed[new])})
    # What the old certificate signed still verifies with it.
    assert verify_platform(before.headers, before.content, {old: old_key})

    env.sandbox.retire_wechat_platform_certificate(old)
    assert set(_downloaded(env)) == {new}
    with pytest.raises(ValueError, match="last"):
        env.sandbox.retire_wechat_platform_certificate(new)


def test_rotation_through_the_control_api(cert_env: WechatEnv) -> None:
    env = cert_env
    response = env.http.post("/_control/wechat/certificates/rotate")
    assert response.status_code == 201
    new = response.json()["serial_no"]
    listed = env.http.get("/_control/wechat/certificates").json()
    assert [c["serial_no"] for c in listed["certificates"]][-1] == new
    assert len(listed["certificates"]) == 2
    assert "BEGIN CERTIFICATE" in listed["ca_certificate"]
    assert env.client.native("ORDER-0001").headers["Wechatpay-Serial"] == new
    keys = env.http.get("/_control/wechat/public-key").json()
    assert keys["public_key_id"] == env.sandbox.wechat_public_key_id


def test_scheme_constant_matches() -> None:
    assert SCHEME == "WECHATPAY2-SHA256-RSA2048"
