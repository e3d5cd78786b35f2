"""The ``payhub-sandbox`` command (typer, as ``payhub`` is).

::

    payhub-sandbox run [--host 127.0.0.1] [--port 8000] [--config sandbox.json]
                       [--time-factor 60] [--base-url URL] [--bills-immediately]
                       [--token TOKEN] [--allow-host NAME ...] [--timezone Asia/Shanghai]
    payhub-sandbox platform-key --config sandbox.json
    payhub-sandbox keygen alipay-platform.pem
    payhub-sandbox unionpay-pki DIR
    payhub-sandbox unionpay-merchant MER_ID --password PW --out merchant.pfx (--url U | --config F)
    payhub-sandbox trigger SCENARIO --channel alipay [--order NO] [--url URL]
    payhub-sandbox listen --forward-to URL [--channel wechat] [--url URL]
    payhub-sandbox trades|notifications|scenarios [--json] [--url URL]

A private key is never printed: ``run`` and ``keygen`` show the public half only.
Bound to a non-loopback address, ``run`` requires a token on the control API
and the console (``--token`` or ``PAYHUB_SANDBOX_TOKEN``; generated and printed
once when neither is given). Exit codes: :data:`EXIT_OK`, :data:`EXIT_FAILED`,
:data:`EXIT_USAGE` (``docs/sandbox.md`` lists them).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub_sandbox._app import create_app
from payhub_sandbox._cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    TOKEN_ENV,
    echo,
    fail,
)
from payhub_sandbox._cli_remote import register_remote_commands
from payhub_sandbox._config import SandboxConfig, build_sandbox, load_config
from payhub_sandbox._console import CONSOLE_TZ_KEY
from payhub_sandbox._control_guard import TOKEN_HEADER, is_loopback_host
from payhub_sandbox._errors import SandboxError
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._serving import make_sandbox_server
from payhub_sandbox.parts import MOUNTED_KEY, part_paths
from payhub_sandbox.unionpay._cli import register_unionpay_commands

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "app", "main"]

app = typer.Typer(
    name="payhub-sandbox",
    help="A local sandbox speaking the payment channels' real protocols.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version() -> str:
    try:
        return version("payhub-sandbox")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        echo(f"payhub-sandbox {_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """A local sandbox speaking the payment channels' real protocols."""


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _load(path: Path | None) -> SandboxConfig:
    try:
        return load_config(path) if path is not None else SandboxConfig()
    except SandboxError as exc:
        fail(exc.message, EXIT_USAGE)


def _banner(sandbox: Sandbox, parts: dict[str, str], config: SandboxConfig) -> None:
    base = sandbox.base_url
    print(f"  console          {base}/ (times in the console's zone)")
    print(f"  control API      {base}/_control/")
    print("  channels:")
    print(f"    alipay         {base}/gateway.do (cashier /alipay/cashier/...)")
    print(
        f'                   (payhub: "environment": "sandbox", "bill_download_hosts": ["{base}"])'
    )
    print(
        f"    wechat         {base}/v3/ (public key {sandbox.wechat_public_key_id}: "
        "GET /_control/wechat/public-key; platform certificates: /v3/certificates; "
        "pay pages /wechat/pay/...)"
    )
    print(
        f"    unionpay       {base}/gateway/api/ (root/middle certificates: "
        "GET /_control/unionpay/certs; cashier /unionpay/cashier/...)"
    )
    for name, path in parts.items():
        print(f"    {name:<14} {base}{path} (sandbox part)")
    print(f"  time factor      {sandbox.time_factor:g}")
    print(f"  Alipay merchants {', '.join(m.app_id for m in sandbox.alipay_merchants) or '-'}")
    print(f"  WeChat merchants {', '.join(m.mch_id for m in sandbox.wechat_merchants) or '-'}")
    print(f"  UnionPay merchants {', '.join(m.mer_id for m in sandbox.unionpay_merchants) or '-'}")
    if config.alipay_platform_key is None:
        print("  platform key     generated for this run (see platform_private_key_file)")
    print('Alipay platform public key (the shop\'s "Alipay public key"):')
    print(sandbox.alipay_public_key_pem, flush=True)


@app.command("run")
def run(  # noqa: PLR0917 - typer passes a command's options by name
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="JSON configuration file.", dir_okay=False),
    ] = None,
    time_factor: Annotated[
        float | None,
        typer.Option(help="Divide every delay (notification retries, timeouts) by this."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="The sandbox's public URL (default http://HOST:PORT).")
    ] = None,
    bills_immediately: Annotated[
        bool | None,
        typer.Option(
            "--bills-immediately/--bills-next-day",
            help="Serve a day's bill at once, or from 09:00 the next day (default: the "
            "configuration's bills_ready_immediately, else next day).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            help="Require this token on the control API and console; generated when bound "
            "to a non-loopback address and not given.",
            show_envvar=True,
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Another Host name the control API and console answer to (repeatable).",
        ),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(envvar="PAYHUB_SANDBOX_TZ", help="The zone the console shows times in."),
    ] = "Asia/Shanghai",
) -> None:
    """Serve the sandbox over HTTP."""
    loaded = _load(config)
    if time_factor is not None and time_factor <= 0:
        fail("--time-factor must be positive", EXIT_USAGE)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--timezone: no time zone {timezone!r}", EXIT_USAGE)
    try:
        sandbox = build_sandbox(
            loaded,
            time_factor=time_factor,
            base_url=base_url,
            bills_ready_immediately=bills_immediately,
        )
    except SandboxError as exc:
        fail(exc.message, EXIT_USAGE)
    generated = token is None and not is_loopback_host(host)
    if generated:
        token = secrets.token_urlsafe(24)
    web = create_app(sandbox, allowed_hosts=[host, *(allow_host or [])], token=token)
    web.config[CONSOLE_TZ_KEY] = zone
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        server = make_sandbox_server(host, port, web)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED)
    url = f"http://{_url_host(host)}:{server.port}"
    if sandbox.base_url is None:
        sandbox.base_url = url
    print(f"payhub-sandbox listening on {url}", flush=True)
    if generated:
        # Printed once, here; never logged.
        print(
            f"  control token    {token} (bound to {host}: send {TOKEN_HEADER} or "
            f"Authorization: Bearer; console: {sandbox.base_url}/?token=...)"
        )
    elif token is not None:
        print(f"  control token    required ({TOKEN_HEADER} or Authorization: Bearer)")
    mounted = web.extensions.get(MOUNTED_KEY, [])
    _banner(sandbox, part_paths(web, mounted), loaded)

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


@app.command("platform-key")
def platform_key(
    config: Annotated[
        Path, typer.Option("--config", help="JSON configuration naming the key.", dir_okay=False)
    ],
) -> None:
    """Print the Alipay platform PUBLIC key (PEM)."""
    loaded = _load(config)
    if loaded.alipay_platform_key is None:
        fail("the configuration names no alipay.platform_private_key_file", EXIT_USAGE)
    try:
        sandbox = build_sandbox(loaded)
    except SandboxError as exc:
        fail(exc.message, EXIT_USAGE)
    print(sandbox.alipay_public_key_pem, end="")
    sandbox.stop()


@app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the PKCS#8 PEM private key.")],
) -> None:
    """Write a new platform private key file (mode 0600); print its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{path} exists; not overwriting it", EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILED)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    print(_public_pem(key), end="")


register_unionpay_commands(app)
register_remote_commands(app)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``payhub-sandbox`` console script: the exit code (``sys.exit`` takes it)."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        # The usage, exit 2: the same whichever click typer brings (older ones exit 0).
        echo(command.get_help(typer.Context(command, info_name="payhub-sandbox")))
        return EXIT_USAGE
    try:
        # Not standalone: a typer.Exit comes back as its code (commands return None).
        result = command.main(
            args=args,
            prog_name="payhub-sandbox",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return EXIT_FAILED
    except Exception as exc:
        # A usage error: a bad command, option or argument. Older typers raise click's own
        # exceptions, newer ones those of the click they carry: both have show/exit_code.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if not callable(show) or not isinstance(code, int):
            raise
        show()
        return code
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
