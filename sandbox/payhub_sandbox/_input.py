"""Reading the control API's JSON bodies: the one place each control blueprint uses.

A malformed body or field is an :class:`InvalidInputError` (400 with the
sandbox's error JSON), never a Flask error page.
"""

from __future__ import annotations

from typing import Any

from flask import request

from payhub_sandbox._errors import InvalidInputError

__all__ = ["json_body", "string_field"]


def json_body() -> dict[str, Any]:
    """The request's JSON object; an empty body reads as ``{}``."""
    data = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(data, dict):
        raise InvalidInputError("the body must be a JSON object")
    return data


def string_field(data: dict[str, Any], name: str, default: str | None = None) -> str:
    """``data[name]`` (or ``default``) as a required string."""
    value = data.get(name, default)
    if value is None:
        raise InvalidInputError(f"{name} is required")
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string")
    return value
