"""Django app for payhub: notification views per channel, and events as signals.

In ``settings.py``::

    INSTALLED_APPS = [..., "payhub_django"]
    PAYHUB = {"channels": {"alipay": {"type": "alipay", ...}}, "store": {"url": ...}}

In ``urls.py``: ``path("payhub/", include("payhub_django.urls"))``. Receivers
connect to the signals in :mod:`payhub_django.signals`. See ``docs/adapters.md``.
"""

from payhub_django._hub import get_hub, set_hub
from payhub_django._return import ReturnOutcome

__all__ = ["ReturnOutcome", "get_hub", "set_hub"]

# Tracebacks and reprs name the public module, not the private one (as httpx does).
for _obj in (ReturnOutcome, get_hub, set_hub):
    _obj.__module__ = __name__
del _obj
