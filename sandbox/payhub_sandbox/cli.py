"""The ``payhub-sandbox`` command.

::

    payhub-sandbox run [--host 127.0.0.1] [--port 8000] [--config sandbox.json]
                       [--time-factor 60] [--base-url URL] [--bills-immediately]
                       [--token TOKEN] [--allow-host NAME ...]
    payhub-sandbox platform-key --config sandbox.json
    payhub-sandbox keygen alipay-platform.pem

A private key is never printed: ``run`` and ``keygen`` show the public half only.
Bound to a non-loopback address, ``run`` requires a token on the control API
and the console (``--token`` or ``PAYHUB_SANDBOX_TOKEN``; generated and printed
once when neither is given).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

from payhub_sandbox._app import create_app
from payhub_sandbox._config import SandboxConfig, build_sandbox, load_config
from payhub_sandbox._control_guard import TOKEN_HEADER, is_loopback_host
from payhub_sandbox._errors import SandboxError
from payhub_sandbox.parts import MOUNTED_KEY
from payhub_sandbox.unionpay._cli import UNIONPAY_HANDLERS, add_unionpay_commands

__all__ = ["main"]

TOKEN_ENV = "PAYHUB_SANDBOX_TOKEN"  # noqa: S105 - a variable name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payhub-sandbox",
        description="A local sandbox speaking the payment channels' real protocols.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the sandbox over HTTP")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks one)")
    run.add_argument("--config", help="JSON configuration file")
    run.add_argument(
        "--time-factor",
        type=float,
        default=None,
        help="divide every delay (notification retries, timeouts) by this factor",
    )
    run.add_argument("--base-url", help="the sandbox's public URL (default http://HOST:PORT)")
    run.add_argument(
        "--bills-immediately",
        action="store_true",
        default=None,
        help="serve a day's bill at once instead of from 09:00 the next day",
    )
    run.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"require this token on the control API and console (env {TOKEN_ENV}); "
        "generated when bound to a non-loopback address and not given",
    )
    run.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name the control API and console answer to (repeatable)",
    )

    key = commands.add_parser("platform-key", help="print the Alipay platform PUBLIC key (PEM)")
    key.add_argument("--config", required=True, help="JSON configuration naming the key")

    keygen = commands.add_parser(
        "keygen", help="write a new platform private key file (mode 0600); print its public key"
    )
    keygen.add_argument("path", help="where to write the PKCS#8 PEM private key")
    add_unionpay_commands(commands)
    return parser


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else SandboxConfig()
    if args.time_factor is not None and args.time_factor <= 0:
        raise SandboxError("--time-factor must be positive")
    sandbox = build_sandbox(
        config,
        time_factor=args.time_factor,
        base_url=args.base_url,
        bills_ready_immediately=args.bills_immediately,
    )
    token = args.token
    generated = token is None and not is_loopback_host(args.host)
    if generated:
        token = secrets.token_urlsafe(24)
    app = create_app(sandbox, allowed_hosts=[args.host, *args.allow_host], token=token)
    server = make_server(args.host, args.port, app, threaded=True)
    url = f"http://{_url_host(args.host)}:{server.port}"
    if sandbox.base_url is None:
        sandbox.base_url = url
    print(f"payhub-sandbox listening on {url}", flush=True)
    if generated:
        # Printed once, here; never logged.
        print(
            f"  control token    {token} (bound to {args.host}: send {TOKEN_HEADER} or "
            f"Authorization: Bearer; console: {sandbox.base_url}/?token=...)"
        )
    elif token is not None:
        print(f"  control token    required ({TOKEN_HEADER} or Authorization: Bearer)")
    print(f"  Alipay gateway   {sandbox.base_url}/gateway.do")
    print(f'  (payhub: "environment": "sandbox", "bill_download_hosts": ["{sandbox.base_url}"])')
    print(f"  console          {sandbox.base_url}/")
    print(f"  control API      {sandbox.base_url}/_control/")
    print(
        f"  UnionPay gateway {sandbox.base_url}/gateway/api/ (root/middle certificates: "
        "GET /_control/unionpay/certs)"
    )
    print(
        f"  WeChat Pay API   {sandbox.base_url}/v3/ (public key {sandbox.wechat_public_key_id}: "
        "GET /_control/wechat/public-key; platform certificates: /v3/certificates)"
    )
    print(f"  time factor      {sandbox.time_factor:g}")
    print(f"  sandbox parts    {', '.join(app.extensions.get(MOUNTED_KEY, [])) or '-'}")
    print(f"  Alipay merchants {', '.join(m.app_id for m in sandbox.alipay_merchants) or '-'}")
    if config.alipay_platform_key is None:
        print("  platform key     generated for this run (see platform_private_key_file)")
    print('Alipay platform public key (the shop\'s "Alipay public key"):')
    print(sandbox.alipay_public_key_pem, flush=True)

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    sandbox.start_delivery_thread()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sandbox.stop()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _platform_key(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.alipay_platform_key is None:
        print(
            "payhub-sandbox: the configuration names no alipay.platform_private_key_file",
            file=sys.stderr,
        )
        return 2
    sandbox = build_sandbox(config)
    print(sandbox.alipay_public_key_pem, end="")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    print(_public_pem(key), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    handlers = {"run": _run, "platform-key": _platform_key, "keygen": _keygen}
    handlers.update(UNIONPAY_HANDLERS)
    try:
        return handlers[args.command](args)
    except SandboxError as exc:
        print(f"payhub-sandbox: {exc.message}", file=sys.stderr)
        return 2
    except FileExistsError:
        print(f"payhub-sandbox: {args.path} exists; not overwriting it", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
