"""How the Alipay notification ratio depends on the host's state (not a verdict).

On a shared host the CPU is sometimes contended by other tenants, and then
Python code slows far more than an RSA verify does, so the ratio
"verify+parse ÷ raw verify" moves with the host. This probe runs paired
rounds (a batch of raw verifies, then a batch of the candidate) for a while,
classes each round by how fast its raw batch ran against the fastest one
(quiet: within 8 %; contended: 20 % slower or more), and prints the median
ratio in each class for:

- ``hub``: ``hub.parse_notification`` (what ``bench_alipay.py`` measures);
- ``decode+verify``: only the compiled form decode, the base64 of ``sign``
  and the verify -- the floor left if building the model cost nothing.

Run: ``.venv/bin/python benchmarks/probe_contention.py [seconds]`` (default 60).
"""

from __future__ import annotations

import binascii
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alipay import _Keys, notification_case

from payhub.channels.alipay import _wire

BATCH = 200


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    if _wire._decode_form_c is None:
        sys.exit("payhub._speedups is not built: nothing to probe")
    decode = _wire._decode_form_c
    case = notification_case(_Keys(), _Keys())
    hub, body, headers = case.hub, case.body, case.headers
    message, signature, public = case.message, case.signature, case.public
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def raw() -> None:
        public.verify(signature, message, pkcs1, sha256)

    def decode_and_verify() -> None:
        decoded = decode(body)
        assert decoded is not None
        fields, signed_bytes = decoded
        public.verify(
            binascii.a2b_base64(fields["sign"], strict_mode=True), signed_bytes, pkcs1, sha256
        )

    candidates: dict[str, Callable[[], object]] = {
        "hub": lambda: hub.parse_notification("alipay", headers, body),
        "decode+verify": decode_and_verify,
    }
    rounds: list[tuple[str, float, float]] = []  # (candidate, raw us per call, ratio)
    gc.disable()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        for name, candidate in candidates.items():
            start = time.perf_counter_ns()
            for _ in range(BATCH):
                raw()
            middle = time.perf_counter_ns()
            for _ in range(BATCH):
                candidate()
            stop = time.perf_counter_ns()
            raw_us = (middle - start) / BATCH / 1000
            rounds.append((name, raw_us, (stop - middle) / (middle - start)))
    gc.enable()
    fastest = min(raw_us for _, raw_us, _ in rounds)
    print(f"{len(rounds)} rounds in {seconds:.0f} s; fastest raw verify {fastest:.1f} us")
    for name in candidates:
        quiet = [r for n, raw_us, r in rounds if n == name and raw_us <= fastest * 1.08]
        busy = [r for n, raw_us, r in rounds if n == name and raw_us >= fastest * 1.2]
        print(
            f"{name:14s} quiet: {_median(quiet)} (n={len(quiet)})   "
            f"contended: {_median(busy)} (n={len(busy)})"
        )


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "  -  "


if __name__ == "__main__":
    main()
