"""Buyer data in the inbox encrypted field by field on every database: the
stored bytes hold no buyer id, reads decrypt, a keyed hash finds a buyer's
notifications, keys rotate, and a ciphertext moved to another row is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from storekit import ToyBank, ToyChannel, notification, sign
from typer.testing import CliRunner

from payhub import (
    ConfigurationError,
    Money,
    PayHub,
    PaymentRequest,
    PayMethod,
    StoreError,
    cli,
)
from payhub.store import FieldKeys, Store
from payhub.store._schema import notifications

K1, K2, HASH = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2, 3))
BUYER = "2088102177846880"


def keys(current: str = "k1", **more: str) -> dict[str, object]:
    return {"current": current, "keys": {"k1": K1, **more}, "hash_key": HASH}


def pay_with_buyer(url: str, encryption: object, no: str, buyer: str = BUYER) -> None:
    """A payment whose notification names the payer (as Alipay's buyer_id does)."""
    bank = ToyBank()
    store = Store(url, encryption=encryption)
    with PayHub(channels=[ToyChannel("toy-a")], store=store, http_client=bank.client()) as hub:
        hub._owns_store = True
        hub.pay(PaymentRequest(out_trade_no=no, amount=Money(1000), subject="card",
                               method=PayMethod.QR, channel="toy-a"))
        bank.buyer_pays("toy-a", no)
        _, body = notification(no, trade_id=bank.trades[("toy-a", no)].trade_id)
        doc = json.loads(body)
        doc["buyer_id"] = buyer
        body = json.dumps(doc, sort_keys=True).encode()
        headers = {"X-Toy-Signature": sign(body), "Content-Type": "application/json"}
        assert hub.handle_notification("toy-a", headers, body).ack.ok


def stored(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(notifications)).mappings()]


def test_buyer_data_is_stored_encrypted(store_url: str) -> None:
    pay_with_buyer(store_url, keys(), "FE-1")
    with Store(store_url, encryption=keys()) as store:
        (row,) = stored(store)
        assert row["key_id"] == "k1"
        assert BUYER.encode() not in bytes(row["raw_body"])  # type: ignore[arg-type]
        assert b"FE-1" not in bytes(row["raw_body"])  # type: ignore[arg-type]
        (record,) = store.inbox("FE-1")
        assert json.loads(record.raw_body)["buyer_id"] == BUYER
        assert [r.out_trade_no for r in store.inbox_of_buyer(BUYER)] == ["FE-1"]
        assert store.inbox_of_buyer("someone-else") == []
    with Store(store_url) as keyless, pytest.raises(StoreError, match="no key is configured"):
        keyless.inbox("FE-1")


def test_without_keys_it_is_stored_in_clear(store_url: str) -> None:
    pay_with_buyer(store_url, None, "FE-2")
    with Store(store_url) as store:
        (row,) = stored(store)
        assert row["key_id"] is None
        assert row["buyer_hash"] is None
        assert BUYER.encode() in bytes(row["raw_body"])  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=r"need store\.encryption"):
            store.inbox_of_buyer(BUYER)


def test_rotation_re_encrypts_under_the_current_key(store_url: str, tmp_path: Path) -> None:
    pay_with_buyer(store_url, None, "FE-3")  # before encryption was configured
    pay_with_buyer(store_url, keys(), "FE-4")  # under k1
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"store": {"url": store_url, "encryption": keys("k2", k2=K2)}}))
    result = CliRunner().invoke(cli.app, ["db", "rotate-keys", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "2 notifications re-encrypted" in result.output
    only_k2 = {"current": "k2", "keys": {"k2": K2}, "hash_key": HASH}
    with Store(store_url, encryption=only_k2) as store:
        rows = stored(store)
        assert [r["key_id"] for r in rows] == ["k2", "k2"]
        assert all(BUYER.encode() not in bytes(r["raw_body"]) for r in rows)  # type: ignore[arg-type]
        bodies = [json.loads(r.raw_body)["out_trade_no"] for r in store.inbox()]
        assert bodies == ["FE-3", "FE-4"]
        assert store.rotate_keys() == 0
    with Store(store_url, encryption=keys()) as old, pytest.raises(StoreError, match="'k2'"):
        old.inbox()


def test_a_moved_ciphertext_does_not_decrypt(store_url: str) -> None:
    pay_with_buyer(store_url, keys(), "FE-5")
    pay_with_buyer(store_url, keys(), "FE-6", buyer="other")
    with Store(store_url, encryption=keys()) as store:
        first, second = stored(store)
        with store.engine.begin() as conn:
            conn.execute(
                notifications.update().where(notifications.c.id == second["id"]),
                {"raw_body": first["raw_body"]},
            )
        with pytest.raises(StoreError, match="fails authentication"):
            store.inbox("FE-6")


def test_bad_key_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        FieldKeys.from_config({"current": "k1", "keys": {"k1": "c2hvcnQ="}, "hash_key": HASH})
    with pytest.raises(ConfigurationError, match="current"):
        FieldKeys.from_config(keys("k9"))
    fk = FieldKeys.from_config(keys())
    assert K1 not in repr(fk)
    assert "k1" in repr(fk)
