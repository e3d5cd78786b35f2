"""What a risk check costs, next to the RSA signature every payment pays anyway.

Run: ``.venv/bin/python benchmarks/bench_risk.py`` (from the repository root).

Measured in one run, interleaved (``_harness.compare``):

* one raw RSA-2048 PKCS#1 v1.5 SHA-256 signature of a ~300-byte message;
* one ``RiskEngine.check`` with ten rules (allow and block lists with IP
  networks, amount and quantity limits, three velocity windows, an unpaid-
  orders window) with the in-memory state: target <= 0.05 of the signature;
* with ``PAYHUB_TEST_REDIS_URL`` set, the same check on the Redis state: the
  Redis commands of each check are counted on the client (one ``EVALSHA``:
  one round trip), and its time is printed beside the signature's.

Every check is a new order from one of 500 buyers, IPs and devices, so the
windows hold what a busy shop's would. Exits 1 if a target is missed.
"""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, main_exit

from payhub import Money, PaymentRequest
from payhub.models import BuyerHints
from payhub.risk import InMemoryRiskState, RedisRiskState, RiskEngine, RiskPolicy

TEN_RULES: dict[str, Any] = {
    "rules": [
        {"name": "allow-office", "type": "list", "action": "allow", "field": "ip",
         "values": ["10.0.0.0/8", "172.16.0.0/12"]},
        {"name": "block-nets", "type": "list", "action": "block", "field": "ip",
         "values": ["203.0.113.0/24", "198.18.0.0/15", "2001:db8::/32"]},
        {"name": "block-buyers", "type": "list", "action": "block", "field": "buyer",
         "values": ["mallory", "trudy"]},
        {"name": "max-order", "type": "amount", "action": "block", "max_minor": 5_000_000},
        {"name": "big-order", "type": "amount", "action": "review", "max_minor": 1_000_000},
        {"name": "qty", "type": "quantity", "action": "block", "max_quantity": 20},
        {"name": "ip-count", "type": "velocity", "action": "block", "key": "ip",
         "window": 60, "max_count": 1000},
        {"name": "buyer-amount", "type": "velocity", "action": "review", "key": "buyer",
         "window": 3600, "max_amount_minor": 10**9},
        {"name": "device-count", "type": "velocity", "action": "review", "key": "device",
         "window": 600, "max_count": 1000},
        {"name": "unpaid-ip", "type": "unpaid", "action": "block", "window": 900,
         "max_unpaid": 1000},
    ]
}


def requests() -> itertools.cycle[PaymentRequest]:
    made = [
        PaymentRequest(
            out_trade_no=f"B{uuid.uuid4().hex[:20]}{i}", amount=Money(1000 + i), subject="card",
            method="qr",
            buyer=BuyerHints(ip=f"192.0.{i % 250}.{i % 200 + 1}", account=f"buyer{i % 500}",
                             device_id=f"dev{i % 500}"),
        )
        for i in range(20_000)
    ]
    return itertools.cycle(made)


def main() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"x" * 300

    def sign() -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    policy = RiskPolicy.from_config(TEN_RULES)
    memory = RiskEngine(policy, InMemoryRiskState())
    feed = requests()
    results = [
        compare("risk check, 10 rules, in memory / RSA-2048 sign",
                lambda: memory.check(next(feed)), sign, target=0.05, batch=20, rounds=30),
    ]
    url = os.environ.get("PAYHUB_TEST_REDIS_URL")
    if url:
        import redis  # noqa: PLC0415 - only with a Redis server

        class Counting(redis.Redis):  # type: ignore[type-arg]
            commands = 0

            def execute_command(self, *args: Any, **options: Any) -> Any:
                Counting.commands += 1
                return super().execute_command(*args, **options)

        client = Counting.from_url(url)
        prefix = f"payhub-bench:{uuid.uuid4().hex}"
        remote = RiskEngine(policy, RedisRiskState(client, prefix=prefix))
        remote.check(next(feed))  # loads the script
        Counting.commands = 0
        checks = 200
        for _ in range(checks):
            remote.check(next(feed))
        counted = Counting.commands
        print(f"Redis: {counted} commands for {checks} checks "
              f"({counted / checks:.2f} round trips per check)")
        redis_ratio = compare("risk check, 10 rules, Redis / RSA-2048 sign (information)",
                              lambda: remote.check(next(feed)), sign, target=float("inf"),
                              batch=10, rounds=20)
        results.append(redis_ratio)
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        client.close()
        if counted != checks:
            print("MISSED: more than one round trip per check")
            sys.exit(1)
    main_exit(results)


if __name__ == "__main__":
    main()
