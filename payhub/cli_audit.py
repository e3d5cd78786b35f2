"""``payhub audit keygen|checkpoint|verify`` and ``payhub db roles|rotate-keys``
(see docs/audit.md and docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from payhub.errors import PayhubError

__all__ = ["app", "register"]

app = typer.Typer(help="The tamper-evident audit chain.", no_args_is_help=True)

_Url = Annotated[
    str | None,
    typer.Option("--url", envvar="PAYHUB_DATABASE_URL", help="The store's database URL."),
]
_Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="PAYHUB_CONFIG", exists=True, dir_okay=False,
                 help="Take the store (URL, encryption keys) from this hub configuration."),
]


@app.command("keygen")
def keygen(
    private_key: Annotated[Path, typer.Option(help="Where to write the private key (PEM).")],
    public_key: Annotated[Path, typer.Option(help="Where to write the public key (PEM).")],
) -> None:
    """Make the Ed25519 key pair that signs checkpoints. Keep the private key
    off the database's host; verifiers need only the public key."""
    from payhub.audit import generate_keys  # noqa: PLC0415
    from payhub.cli import _fail_with  # noqa: PLC0415 - cli registers this module

    try:
        fingerprint = generate_keys(private_key, public_key)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"key {fingerprint}: private {private_key}, public {public_key}")


@app.command("checkpoint")
def checkpoint(
    directory: Annotated[Path, typer.Option("--dir", help="The checkpoint directory.")],
    private_key: Annotated[Path, typer.Option(help="The Ed25519 private key (PEM).")],
    url: _Url = None,
    config: _Config = None,
) -> None:
    """Sign the chain's head (sequence number, link, time) and append it to
    DIR/checkpoints.jsonl. Run it from cron, on a host the database cannot write."""
    from payhub.audit import load_private_key, write_checkpoint  # noqa: PLC0415
    from payhub.cli import _fail_with, _open_store  # noqa: PLC0415

    try:
        key = load_private_key(private_key)
        with _open_store(url, config) as store:
            written = write_checkpoint(store, directory, key)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"checkpoint {written.seq} {written.hash} at {written.at}")


@app.command("verify")
def verify(
    url: _Url = None,
    config: _Config = None,
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", help="A checkpoint directory to check against.")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The checkpoints' public key (PEM).")
    ] = None,
) -> None:
    """Walk the whole chain (constant memory). Exit 0 if sound; 1 naming the
    first broken sequence number, or a forged checkpoint."""
    from payhub import audit  # noqa: PLC0415
    from payhub.cli import EXIT_USAGE, _fail, _fail_with, _open_store  # noqa: PLC0415

    if (checkpoints is None) != (public_key is None):
        _fail("--checkpoints and --public-key go together", EXIT_USAGE)
    try:
        public = None if public_key is None else audit.load_public_key(public_key)
        with _open_store(url, config) as store:
            report = audit.verify(store, checkpoints, public)
    except PayhubError as exc:
        _fail_with(exc)
    if report.broken is not None:
        _fail(f"audit chain broken at sequence number {report.broken.seq}: "
              f"{report.broken.reason} ({report.rows} rows read)")
    typer.echo(
        f"audit chain sound: {report.rows} rows, head {report.head.seq} {report.head.hash}, "
        f"{report.checkpoints} checkpoints matched"
    )


def db_roles(
    app_role: Annotated[str, typer.Option("--app", help="The application's role.")],
    migrator: Annotated[str, typer.Option("--migrator", help="The role that owns the tables.")],
    schema: Annotated[str, typer.Option(help="The schema of payhub's tables.")] = "public",
) -> None:
    """Print the PostgreSQL grants of least privilege: run them as the migrator
    after every `payhub db upgrade` (docs/security.md)."""
    from payhub.cli import EXIT_USAGE, _fail  # noqa: PLC0415
    from payhub.store import grant_statements  # noqa: PLC0415

    try:
        statements = grant_statements(app_role, migrator=migrator, schema=schema)
    except PayhubError as exc:
        _fail(exc.message, EXIT_USAGE)
    typer.echo("\n".join(f"{s};" for s in statements))


def db_rotate_keys(config: _Config = None, url: _Url = None) -> None:
    """Re-encrypt the stored buyer data under the current key (store.encryption)."""
    from payhub.cli import _fail_with, _open_store  # noqa: PLC0415

    try:
        with _open_store(url, config) as store:
            done = store.rotate_keys()
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"{done} notifications re-encrypted")


def register(root: typer.Typer, db: typer.Typer) -> None:
    """Add ``payhub audit`` and ``payhub db roles|rotate-keys``."""
    root.add_typer(app, name="audit")
    db.command("roles")(db_roles)
    db.command("rotate-keys")(db_rotate_keys)
