"""The development servers' request logs hold no signature once an adapter is set up.

Alipay sends the buyer back to the shop's return URL with the whole signed
answer in the query string (``…&sign_type=RSA2&sign=…``); ``flask run``
(werkzeug) and ``manage.py runserver`` (logger ``django.server``) log each
request line at INFO. Both servers run here for real, on a loopback socket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from adapterkit import ToyChannel, return_params
from flask import Flask
from flask_payhub import PayHubExtension
from werkzeug.serving import make_server

from payhub import PayHub
from payhub.signing import _logs, guard_http_logs

SIGNATURE = "Zm9vYmFyYmF6cXV4LXRoZS13aG9sZS1zaWduYXR1cmU"


@pytest.fixture
def unguarded() -> Iterator[None]:
    """Each server's logger as before any adapter was set up in this process."""
    names = ("werkzeug", "django.server")
    before = [name for name in names if name in _logs._guarded]
    for name in names:
        logging.getLogger(name).removeFilter(_logs._FILTER)
        _logs._guarded.discard(name)
    yield
    guard_http_logs(*before)


@contextmanager
def _serving(server: Any) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _logged(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    """``logger``'s lines naming the return URL, once the server (which logs a
    request after answering it, on its own thread) has written them."""
    give_up = time.monotonic() + 10
    while True:
        records = {id(r): r for r in caplog.records if r.name == logger}  # seen twice?
        lines = [r.getMessage() for r in records.values()]
        lines = [line for line in lines if "/payhub/return/" in line]
        if lines or time.monotonic() > give_up:
            return lines
        time.sleep(0.02)


def _query() -> dict[str, str]:
    return {**return_params("LOGR1"), "sign_type": "RSA2", "sign": SIGNATURE}


def test_flask_dev_server_logs_the_return_url_without_its_signature(
    unguarded: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with PayHub(channels=[ToyChannel("toy")]) as hub:
        app = Flask(__name__)
        PayHubExtension(app, hub=hub)
        with _serving(make_server("127.0.0.1", 0, app, threaded=True)) as url:
            httpx.get(f"{url}/payhub/return/toy", params=_query())
    lines = _logged(caplog, "werkzeug")
    assert len(lines) == 1
    assert "sign_type=RSA2" in lines[0]
    assert "sign=[redacted]" in lines[0]
    assert SIGNATURE not in caplog.text


def test_django_runserver_logs_the_return_url_without_its_signature(
    unguarded: None, caplog: pytest.LogCaptureFixture
) -> None:
    from django.apps import apps
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    apps.get_app_config("payhub_django").ready()  # what django.setup() ran at start-up
    caplog.set_level(logging.INFO)
    # Django's default logging stops django.server's records from propagating (4.2)
    server_log = logging.getLogger("django.server")
    server_log.addHandler(caplog.handler)
    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)  # runserver's own classes
    server.set_app(WSGIHandler())
    try:
        with _serving(server) as url:
            httpx.get(f"{url}/payhub/return/nowhere", params=_query())
    finally:
        server_log.removeHandler(caplog.handler)
    lines = _logged(caplog, "django.server")
    assert len(lines) == 1
    assert "sign_type=RSA2" in lines[0]
    assert "sign=[redacted]" in lines[0]
    assert SIGNATURE not in caplog.text
