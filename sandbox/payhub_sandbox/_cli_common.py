"""What every ``payhub-sandbox`` command shares: exit codes, messages, the control client."""

from __future__ import annotations

import json
from typing import Any, Final, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "TOKEN_ENV",
    "URL_ENV",
    "ControlClient",
    "dump_json",
    "echo",
    "fail",
]

#: Exit codes, as docs/sandbox.md lists them (the same as ``payhub``'s).
EXIT_OK: Final = 0
#: the work failed: the sandbox refused it, could not be reached, or a delivery failed
EXIT_FAILED: Final = 1
#: the command line or the configuration is wrong
EXIT_USAGE: Final = 2

TOKEN_ENV: Final = "PAYHUB_SANDBOX_TOKEN"  # noqa: S105 - a variable name
URL_ENV: Final = "PAYHUB_SANDBOX_URL"


def echo(text: str) -> None:
    """A line on stdout, as is (no markup, no highlighting)."""
    print(text, flush=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """``payhub-sandbox: MESSAGE`` on stderr, then exit with ``code``."""
    Console(stderr=True).print(f"payhub-sandbox: {escape(message)}", highlight=False)
    raise typer.Exit(code)


class ControlClient:
    """The control API of a running sandbox (``--url``, ``--token``)."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"X-Sandbox-Token": token} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer; a refusal or an unreachable sandbox exits 1 with its message."""
        try:
            response = self._http.request(method, f"/_control{path}", json=body)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the sandbox at {self.url}: {exc}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            fail(f"the sandbox answered {response.status_code}: {message or response.text[:200]}")
        return data


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)
