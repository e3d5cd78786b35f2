"""The auto-submitting HTML form of a browser consume (``frontTransReq.do``)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

__all__ = ["render_form"]

_FORM_ID = "unionpay_pay_form"


def render_form(action: str, fields: Mapping[str, str]) -> str:
    """A complete HTML page that posts ``fields`` to ``action`` as soon as it loads.

    Every name and value is HTML-escaped (quotes included); the ``<noscript>``
    button lets a browser without JavaScript continue by hand.
    """
    inputs = "\n".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="UTF-8"><title>UnionPay</title></head>\n<body>\n'
        f'<form id="{_FORM_ID}" action="{escape(action)}" method="post" accept-charset="UTF-8">\n'
        f"{inputs}\n"
        '<noscript><button type="submit">Continue to UnionPay</button></noscript>\n'
        "</form>\n"
        f'<script>document.getElementById("{_FORM_ID}").submit();</script>\n'
        "</body></html>\n"
    )
