"""The ``payhub`` command: db upgrade, sync, events."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import storekit
import typer
from storekit import ToyBank, notification
from typer.testing import CliRunner

import payhub.cli as cli
from payhub import ChannelTimeout, Money, PayHub, PaymentRequest, PayMethod, RefundRequest
from payhub.plugins import get_plugin_manager
from payhub.store import PaymentState, RefundState, Store

runner = CliRunner()

EVENT_LOG: list[str] = []


def record_event(event) -> None:
    EVENT_LOG.append(f"{event.type}:{event.out_trade_no}")


@pytest.fixture
def config_file(tmp_path: Path, store_url: str, bank: ToyBank, monkeypatch) -> Path:
    path = tmp_path / "hub.json"
    path.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "channels": {"toy-a": {"type": "toy"}, "toy-b": {"type": "toy"}},
                "events": {"handlers": {"*": "test_store_cli:record_event"}},
            }
        )
    )
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(storekit, name="toy")

    def open_hub(config: Path) -> PayHub:
        return PayHub.from_config(
            cli._load_config(config), plugin_manager=pm, http_client=bank.client()
        )

    monkeypatch.setattr(cli, "_open_hub", open_hub)
    EVENT_LOG.clear()
    return path


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(cli.app, ["db", "current", "--url", url])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "none"
    result = runner.invoke(cli.app, ["db", "upgrade", "--url", url])
    assert result.exit_code == 0, result.output
    assert "at revision 0010" in result.output
    result = runner.invoke(cli.app, ["db", "current"], env={"PAYHUB_DATABASE_URL": url})
    assert result.output.strip() == "0010"


def test_db_upgrade_from_config_and_errors(tmp_path: Path) -> None:
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"store": {"url": f"sqlite:///{tmp_path / 'c.db'}"}}))
    assert runner.invoke(cli.app, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 2
    # A store URL payhub refuses is a configuration error: exit 2, as documented.
    result = runner.invoke(cli.app, ["db", "upgrade", "--url", "sqlite:///:memory:"])
    assert result.exit_code == 2
    assert "needs a file" in result.output
    down = "postgresql+psycopg://x:secret@127.0.0.1:1/x"
    result = runner.invoke(cli.app, ["db", "upgrade", "--url", down])
    assert result.exit_code == 1
    assert "secret" not in result.output


def test_sync_applies_channel_answers(config_file: Path, store: Store, bank: ToyBank) -> None:
    with cli._open_hub(config_file) as hub:
        for n in range(3):
            hub.pay(
                PaymentRequest(
                    out_trade_no=f"C{n}", amount=Money(100), subject="x", method=PayMethod.QR
                )
            )
    bank.trades[("toy-a", "C0")].status = "paid"
    result = runner.invoke(cli.app, ["sync", "--config", str(config_file), "--older-than", "0s"])
    assert result.exit_code == 0, result.output
    assert "checked 3 pending payment(s), 1 changed" in result.output
    assert store.payment("C0").status is PaymentState.PAID
    assert EVENT_LOG == ["payment.succeeded:C0"]
    result = runner.invoke(cli.app, ["sync", "--config", str(config_file)])  # default 10m
    assert "checked 0" in result.output


def test_sync_completes_and_reports_pending_refunds(
    config_file: Path, store: Store, bank: ToyBank
) -> None:
    with cli._open_hub(config_file) as hub:
        for n, fault in ((1, "lost"), (2, "timeout")):
            out_trade_no = f"CR{n}"
            hub.pay(
                PaymentRequest(
                    out_trade_no=out_trade_no, amount=Money(100), subject="x", method=PayMethod.QR
                )
            )
            assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", out_trade_no)).ack.ok
            bank.fail_refund["toy-a"] = fault
            with pytest.raises(ChannelTimeout):
                hub.refund(
                    None,
                    RefundRequest(
                        out_trade_no=out_trade_no, out_refund_no=f"RCR{n}", amount=Money(100)
                    ),
                )
    bank.fail_refund.clear()
    result = runner.invoke(cli.app, ["sync", "--config", str(config_file), "--older-than", "0s"])
    # RCR2 never reached the channel: a person must act, so the command fails.
    assert result.exit_code == 1, result.output
    assert "checked 2 pending refund(s), 1 changed" in result.output
    assert "refund RCR1\tsucceeded" in result.output
    assert "refund RCR2" in result.output
    assert "knows no such refund" in result.output
    assert store.payment("CR1").status is PaymentState.REFUNDED
    assert store.refund("RCR2").status is RefundState.PENDING
    assert "payment.refunded:CR1" in EVENT_LOG


def test_events_dispatch_and_list(config_file: Path, store: Store) -> None:
    with PayHub(channels=[storekit.ToyChannel("toy-a")], store=store) as hub:
        store.begin_payment(
            PaymentRequest(out_trade_no="C9", amount=Money(1000), subject="x", method="qr")
        )
        hub.handle_notification("toy-a", *notification("C9"))  # no subscriber: stays pending
    listed = runner.invoke(cli.app, ["events", "list", "--config", str(config_file), "--pending"])
    assert listed.exit_code == 0, listed.output
    assert "payment.succeeded" in listed.output
    result = runner.invoke(cli.app, ["events", "dispatch", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "dispatched 1 event(s); 0 still pending" in result.output
    assert EVENT_LOG == ["payment.succeeded:C9"]
    again = runner.invoke(cli.app, ["events", "dispatch", "--config", str(config_file)])
    assert "dispatched 0 event(s)" in again.output


def test_events_dispatch_needs_handlers(tmp_path: Path, store_url: str, monkeypatch) -> None:
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"store": {"url": store_url}, "channels": {"t": {"type": "toy"}}}))
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(storekit, name="toy")
    monkeypatch.setattr(
        cli, "_open_hub", lambda p: PayHub.from_config(cli._load_config(p), plugin_manager=pm)
    )
    result = runner.invoke(cli.app, ["events", "dispatch", "--config", str(config)])
    assert result.exit_code == 2  # the configuration is wrong
    assert "no event handlers" in result.output


def test_configuration_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert runner.invoke(cli.app, ["sync", "--config", str(bad)]).exit_code == 2
    no_store = tmp_path / "nostore.json"
    no_store.write_text(json.dumps({"channels": {}}))
    result = runner.invoke(cli.app, ["sync", "--config", str(no_store)])
    assert result.exit_code == 2
    assert "store" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert cli.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "10x", "m", "-5m", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        cli.parse_duration(text)


def test_from_config_with_store_and_handlers(tmp_path: Path) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(storekit, name="toy")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    config = {
        "store": {"url": url},
        "channels": {"toy-a": {"type": "toy"}},
        "events": {"handlers": {"payment.succeeded": ["test_store_cli:record_event"]}},
    }
    with PayHub.from_config(config, plugin_manager=pm) as hub:
        assert hub.store is not None
        assert hub.store.dialect == "sqlite"
    bad = {**config, "events": {"handlers": {"*": "no_such_module:x"}}}
    with pytest.raises(Exception, match="cannot import"):
        PayHub.from_config(bad, plugin_manager=pm)


# -- issue 11 point 25: the documented config, exit codes, sync, downgrades, units ----


def _doc_config_example() -> dict:
    """The first JSON block of docs/cli.md, as a reader would copy it."""
    text = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    return json.loads(block)


def _pem_key_pair(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "app_private_key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "alipay_public_key.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_the_documented_configuration_loads(tmp_path: Path, monkeypatch) -> None:
    config = _doc_config_example()
    # The doc's files and handler module, made real under tmp_path.
    private, public = _pem_key_pair(tmp_path)
    alipay = config["channels"]["alipay"]
    assert set(alipay) >= {"type", "app_id", "app_private_key"}
    alipay["app_private_key"] = {"$file": str(private)}
    alipay["alipay_public_key"] = {"$file": str(public)}
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(
        "def deliver_card_key(event):\n    pass\n\ndef audit(event):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PAYHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'doc.db'}")
    path = tmp_path / "hub.json"
    path.write_text(json.dumps(config))
    with cli._open_hub(path) as hub:
        assert hub.channel("alipay").kind == "alipay"
    # ... and the same file through the command: a configuration it accepts.
    result = runner.invoke(cli.app, ["db", "upgrade", "--config", str(path)])
    assert result.exit_code == 0, result.output


def test_exit_codes_follow_the_documented_table(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'codes.db'}"
    # 0: done
    assert runner.invoke(cli.app, ["db", "upgrade", "--url", db]).exit_code == 0
    # 2: the configuration is wrong (an unknown channel key, refused by the channel)
    bad = tmp_path / "bad-key.json"
    bad.write_text(
        json.dumps(
            {
                "store": {"url": db},
                "channels": {"alipay": {"type": "alipay", "app_id": "1", "private_key": "x"}},
            }
        )
    )
    result = runner.invoke(cli.app, ["sync", "--config", str(bad)])
    assert result.exit_code == 2, result.output
    assert "private_key" in result.output
    # 2: the command line is wrong
    assert (
        runner.invoke(cli.app, ["db", "upgrade", "--url", db, "--revision", "9999"]).exit_code == 2
    )
    assert (
        runner.invoke(cli.app, ["sync", "--config", str(tmp_path / "missing.json")]).exit_code == 2
    )
    # 1: the work failed (the database cannot be reached)
    down = "postgresql+psycopg://x@127.0.0.1:1/x"
    assert runner.invoke(cli.app, ["db", "current", "--url", down]).exit_code == 1


def test_a_duration_needs_its_unit(config_file: Path) -> None:
    result = runner.invoke(cli.app, ["sync", "--config", str(config_file), "--older-than", "10"])
    assert result.exit_code == 2
    assert "no unit" in result.output
    assert "10m" in result.output


def test_upgrade_never_goes_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    result = runner.invoke(cli.app, ["db", "upgrade", "--url", url, "--revision", "0002"])
    assert result.exit_code == 0, result.output
    assert "at revision 0002" in result.output
    for target in ("0001", "base"):
        result = runner.invoke(cli.app, ["db", "upgrade", "--url", url, "--revision", target])
        assert result.exit_code == 1, result.output
        assert "ahead of" in result.output
        assert f"at revision {target}" not in result.output  # never claims to be there
    assert runner.invoke(cli.app, ["db", "current", "--url", url]).output.strip() == "0002"
    # The same revision again is fine, and forward still works.
    assert (
        runner.invoke(cli.app, ["db", "upgrade", "--url", url, "--revision", "0002"]).exit_code == 0
    )
    assert runner.invoke(cli.app, ["db", "upgrade", "--url", url]).exit_code == 0


def failing_handler(event) -> None:
    EVENT_LOG.append(f"failed:{event.out_trade_no}")
    raise RuntimeError("the card stock service is down")


def test_sync_fails_when_an_event_handler_failed(
    tmp_path: Path, store_url: str, store: Store, bank: ToyBank, monkeypatch
) -> None:
    path = tmp_path / "failing.json"
    path.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "channels": {"toy-a": {"type": "toy"}},
                "events": {"handlers": {"payment.succeeded": "test_store_cli:failing_handler"}},
            }
        )
    )
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(storekit, name="toy")
    monkeypatch.setattr(
        cli,
        "_open_hub",
        lambda p: PayHub.from_config(
            cli._load_config(p), plugin_manager=pm, http_client=bank.client()
        ),
    )
    EVENT_LOG.clear()
    with cli._open_hub(path) as hub:
        hub.pay(PaymentRequest(out_trade_no="F1", amount=Money(100), subject="x", method="qr"))
    bank.trades[("toy-a", "F1")].status = "paid"
    result = runner.invoke(cli.app, ["sync", "--config", str(path), "--older-than", "0s"])
    assert EVENT_LOG == ["failed:F1"]
    assert store.payment("F1").status is PaymentState.PAID
    assert result.exit_code == 1, result.output
    assert "not delivered" in result.output
    assert len(store.events(out_trade_no="F1", pending=True)) == 1
