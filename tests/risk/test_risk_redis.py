"""The Redis risk state on a real server: sliding windows shared by processes,
one round trip per check, unpaid orders settled, no buyer data in keys."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import redis

from payhub import Money, NetworkError, PaymentRequest
from payhub.models import BuyerHints
from payhub.risk import RedisRiskState, RiskAction, RiskEngine, RiskPolicy

TEN_RULES = {
    "rules": [
        {"name": "allow-office", "type": "list", "action": "allow", "field": "ip",
         "values": ["10.0.0.0/8"]},
        {"name": "block-net", "type": "list", "action": "block", "field": "ip",
         "values": ["203.0.113.0/24", "2001:db8::/32"]},
        {"name": "block-buyer", "type": "list", "action": "block", "field": "buyer",
         "values": ["mallory"]},
        {"name": "max-order", "type": "amount", "action": "block", "max_minor": 500_000},
        {"name": "big-order", "type": "amount", "action": "review", "max_minor": 100_000},
        {"name": "qty", "type": "quantity", "action": "block", "max_quantity": 20},
        {"name": "ip-count", "type": "velocity", "action": "block", "key": "ip", "window": 60,
         "max_count": 3},
        {"name": "buyer-amount", "type": "velocity", "action": "review", "key": "buyer",
         "window": 3600, "max_amount_minor": 300_000},
        {"name": "device-count", "type": "velocity", "action": "review", "key": "device",
         "window": 600, "max_count": 10},
        {"name": "unpaid-ip", "type": "unpaid", "action": "block", "window": 900,
         "max_unpaid": 5},
    ]
}


def request(no: str, ip: str, amount: int = 1000, buyer: str = "bob") -> PaymentRequest:
    return PaymentRequest(
        out_trade_no=no, amount=Money(amount), subject="card", method="qr",
        buyer=BuyerHints(ip=ip, account=buyer, device_id="dev-1"),
    )


class CountingRedis(redis.Redis):  # type: ignore[type-arg]
    commands: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_a_check_with_ten_rules_is_one_round_trip(redis_url: str, redis_prefix: str) -> None:
    client = CountingRedis.from_url(redis_url)
    client.commands = []
    try:
        engine = RiskEngine(
            RiskPolicy.from_config(TEN_RULES), RedisRiskState(client, prefix=redis_prefix)
        )
        engine.check(request("W0", "192.0.2.1"))  # loads the script
        for i in range(1, 4):
            client.commands.clear()
            verdict = engine.check(request(f"W{i}", "192.0.2.1"))
            assert client.commands == ["EVALSHA"]
        assert (verdict.action, verdict.rule) == (RiskAction.BLOCK, "ip-count")
        engine.settle("W0")  # loads the settle script
        client.commands.clear()
        engine.settle("W1")
        assert client.commands == ["EVALSHA"]
        keys = [k.decode() for k in client.scan_iter(match=f"{{{redis_prefix}}}:*")]
        assert keys
        assert not any("192.0.2.1" in k or "bob" in k or "dev-1" in k for k in keys)
        assert all(0 < client.pttl(k) <= 3_600_000 for k in keys)
    finally:
        client.close()


def test_processes_share_the_windows(redis_url: str, redis_prefix: str) -> None:
    code = (
        "import sys\n"
        "from payhub import Money, PaymentRequest\n"
        "from payhub.models import BuyerHints\n"
        "from payhub.risk import RedisRiskState, RiskEngine, RiskPolicy\n"
        "p = RiskPolicy.from_config({'rules': [{'name': 'ip', 'type': 'velocity', "
        "'action': 'block', 'key': 'ip', 'window': 60, 'max_count': 100}]})\n"
        "s = RedisRiskState.from_url(sys.argv[1], prefix=sys.argv[2])\n"
        "e = RiskEngine(p, s, fail_open=False)\n"
        "for i in range(5):\n"
        "    e.check(PaymentRequest(out_trade_no=f'{sys.argv[3]}x{i}', amount=Money(1), "
        "subject='c', method='qr', buyer=BuyerHints(ip='192.0.2.77')))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, redis_url, redis_prefix, f"P{n}"])
        for n in range(3)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    state = RedisRiskState.from_url(redis_url, prefix=redis_prefix)
    try:
        engine = RiskEngine(
            RiskPolicy.from_config({"rules": [
                {"name": "ip", "type": "velocity", "action": "block", "key": "ip",
                 "window": 60, "max_count": 15}]}),
            state,
        )
        verdict = engine.check(request("LAST", "192.0.2.77"))
        assert (verdict.action, verdict.rule) == (RiskAction.BLOCK, "ip")
        assert "16 payments" in str(verdict.reason)
    finally:
        state.close()


def test_unpaid_orders_settled_in_redis(redis_url: str, redis_prefix: str) -> None:
    state = RedisRiskState.from_url(redis_url, prefix=redis_prefix)
    try:
        engine = RiskEngine(
            RiskPolicy.from_config({"rules": [
                {"name": "unpaid", "type": "unpaid", "action": "block", "window": 900,
                 "max_unpaid": 1}]}),
            state,
        )
        assert engine.check(request("N1", "192.0.2.9")).action is RiskAction.ALLOW
        assert engine.check(request("N2", "192.0.2.9")).action is RiskAction.BLOCK
        engine.settle("N1")
        engine.settle("N2")
        assert engine.check(request("N3", "192.0.2.9")).action is RiskAction.ALLOW
    finally:
        state.close()


def test_an_unreachable_redis_fails_open_or_closed_as_configured() -> None:
    policy = RiskPolicy.from_config({"rules": [
        {"name": "ip", "type": "velocity", "action": "block", "key": "ip", "window": 60,
         "max_count": 0},
        {"name": "cap", "type": "amount", "action": "block", "max_minor": 10}]})
    state = RedisRiskState.from_url("redis://127.0.0.1:1/0", prefix="nowhere")
    try:
        open_engine = RiskEngine(policy, state)
        assert open_engine.check(request("F1", "192.0.2.1", amount=5)).action is RiskAction.ALLOW
        # the rules that need no window still apply
        assert open_engine.check(request("F2", "192.0.2.1", amount=50)).rule == "cap"
        with pytest.raises(NetworkError, match="risk state"):
            RiskEngine(policy, state, fail_open=False).check(request("F3", "192.0.2.1"))
    finally:
        state.close()
