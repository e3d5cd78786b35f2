"""``payhub-sandbox``: a real server in a subprocess, and the key commands."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from payhub_sandbox.cli import main
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, SELLER_ID

REPO = Path(__file__).resolve().parents[2]


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("payhub-sandbox")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "payhub_sandbox", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / "sandbox"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


class _Output:
    """Reads a subprocess's stdout lines in a thread, so waiting can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def until(self, marker: str, timeout: float) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if marker in line:
                return seen
        raise AssertionError(f"no {marker!r} in output: {seen}")

    def join(self) -> None:
        self._thread.join(timeout=10)


@pytest.fixture
def config(tmp_path: Path, merchant_keys, platform_keys) -> Path:
    (tmp_path / "platform.pem").write_text(platform_keys.private_pem)
    (tmp_path / "shop.pub").write_text(merchant_keys.public_pem)
    path = tmp_path / "sandbox.json"
    path.write_text(
        json.dumps(
            {
                "alipay": {
                    "platform_private_key_file": "platform.pem",
                    "merchants": [
                        {
                            "app_id": APP_ID,
                            "seller_id": {"$env": "SANDBOX_TEST_SELLER"},
                            "public_key_file": "shop.pub",
                        }
                    ],
                }
            }
        )
    )
    return path


def test_run_serves_over_http(config: Path, merchant_keys, platform_keys) -> None:
    env = _env()
    env["SANDBOX_TEST_SELLER"] = SELLER_ID
    command = _command(
        "run", "--host", "127.0.0.1", "--port", "0", "--config", str(config), "--time-factor", "60"
    )
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=config.parent,
    ) as proc:
        output = _Output(proc)
        try:
            lines = output.until("-----END PUBLIC KEY-----", timeout=30)
            url = lines[0].rsplit(" ", 1)[1]
            assert url.startswith("http://127.0.0.1:")
            text = "\n".join(lines)
            assert platform_keys.public_pem.strip() in text
            assert "PRIVATE" not in text
            assert APP_ID in text
            with httpx.Client(base_url=url, timeout=10) as http:
                key = http.get("/_control/alipay/platform-key")
                assert key.text == platform_keys.public_pem
                assert http.get("/_control/clock").json()["time_factor"] == 60.0
                client = AlipayWireClient(
                    http,
                    app_id=APP_ID,
                    private_key=merchant_keys.private,
                    now=lambda: datetime.now(UTC),
                )
                reply = client.call(
                    "alipay.trade.precreate",
                    {"out_trade_no": "CLI1", "total_amount": "1.00", "subject": "cli"},
                )
                assert reply.code == "10000", reply.node
                assert reply.node["qr_code"].startswith(f"{url}/alipay/cashier/")
                assert reply.verifies(platform_keys.public)
                assert http.get("/").status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            output.join()
    assert proc.returncode == 0  # SIGTERM is a clean shutdown


def test_platform_key_command(config: Path, platform_keys, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SANDBOX_TEST_SELLER", SELLER_ID)
    assert main(["platform-key", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out == platform_keys.public_pem
    assert "PRIVATE" not in out


def test_platform_key_needs_a_configured_key(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.json"
    path.write_text("{}")
    assert main(["platform-key", "--config", str(path)]) == 2
    assert "platform_private_key_file" in capsys.readouterr().err


def test_bad_config_is_reported_without_secrets(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"alipay": {"platform_private_key": "SECRET-NOT-A-KEY"}}))
    assert main(["platform-key", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "SECRET" not in err
    missing = tmp_path / "missing-env.json"
    missing.write_text(json.dumps({"base_url": {"$env": "PAYHUB_SANDBOX_UNSET_VAR"}}))
    assert main(["platform-key", "--config", str(missing)]) == 2


def test_keygen(tmp_path: Path, capsys) -> None:
    target = tmp_path / "platform.pem"
    assert main(["keygen", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in out
    assert target.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert target.stat().st_mode & 0o777 == 0o600
    assert main(["keygen", str(target)]) == 2  # never overwrites


def test_run_on_a_non_loopback_address_requires_a_printed_token(config: Path) -> None:
    env = _env()
    env["SANDBOX_TEST_SELLER"] = SELLER_ID
    env.pop("PAYHUB_SANDBOX_TOKEN", None)
    command = _command("run", "--host", "0.0.0.0", "--port", "0", "--config", str(config))
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=config.parent,
    ) as proc:
        output = _Output(proc)
        try:
            lines = output.until("-----END PUBLIC KEY-----", timeout=30)
            port = lines[0].rsplit(":", 1)[1]
            (line,) = [x for x in lines if "control token" in x]
            token = line.split()[2]
            assert len(token) >= 24
            assert sum(token in x for x in lines) == 1  # printed once
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                refused = http.get("/_control/clock")
                assert refused.status_code == 403
                assert refused.json()["error"] == "TOKEN_REQUIRED"
                assert http.get("/").status_code == 403
                ok = http.get("/_control/clock", headers={"X-Sandbox-Token": token})
                assert ok.status_code == 200
                bearer = {"Authorization": f"Bearer {token}"}
                assert http.get("/_control/trades", headers=bearer).status_code == 200
                foreign = http.get(
                    "/_control/clock", headers={"X-Sandbox-Token": token, "Host": "evil.example"}
                )
                assert foreign.status_code == 403
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            output.join()
