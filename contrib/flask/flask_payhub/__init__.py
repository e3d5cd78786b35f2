"""Flask extension for payhub: notification and browser-return endpoints.

>>> from flask import Flask
>>> from flask_payhub import PayHubExtension, current_hub
>>> app = Flask(__name__)
>>> app.config["PAYHUB"] = {"channels": {"alipay": {"type": "alipay", ...}}}  # doctest: +SKIP
>>> PayHubExtension(app)  # doctest: +SKIP

Channels then notify ``POST /payhub/notify/<channel>`` and buyers return to
``GET /payhub/return/<channel>``. See ``docs/adapters.md``.
"""

from flask_payhub._extension import (
    PayHubExtension,
    ReturnHandler,
    ReturnOutcome,
    current_hub,
    default_return_handler,
)

__all__ = [
    "PayHubExtension",
    "ReturnHandler",
    "ReturnOutcome",
    "current_hub",
    "default_return_handler",
]

# Tracebacks and reprs name the public module, not the private one (as httpx does).
for _obj in (PayHubExtension, ReturnOutcome, current_hub, default_return_handler):
    _obj.__module__ = __name__
del _obj
