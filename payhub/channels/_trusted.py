"""Models from values a channel has already checked: no second validation.

A notification's fields are verified, parsed and range-checked by the channel
that read them; running them through pydantic again costs more than the rest
of the parse on the hot path. :func:`trusted` builds the model as
``model_construct`` would, without its per-field loop.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from functools import partial
from typing import Any, Final, TypeVar

from pydantic import BaseModel

__all__ = ["trusted"]

M = TypeVar("M", bound=BaseModel)
_new: Final = object.__new__
# BaseModel's slots, set through their descriptors (what object.__setattr__
# would find by name, less the lookup): the instance dict and pydantic's state.
_SLOTS: Final = BaseModel.__dict__
_set_dict: Final = _SLOTS["__dict__"].__set__
_set_fields_set: Final = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra: Final = _SLOTS["__pydantic_extra__"].__set__
_set_private: Final = _SLOTS["__pydantic_private__"].__set__
#: per model: its field names, and a default maker for each field that has one
_IMMUTABLE: Final = (type(None), str, bytes, int, float, bool, tuple, frozenset, enum.Enum)
_SHAPES: dict[type[BaseModel], tuple[frozenset[str], dict[str, Callable[[], Any]]]] = {}


def _same(value: Any) -> Any:
    return value


def _shape(cls: type[BaseModel]) -> tuple[frozenset[str], dict[str, Callable[[], Any]]]:
    shape = _SHAPES.get(cls)
    if shape is None:
        defaults: dict[str, Callable[[], Any]] = {}
        for name, info in cls.model_fields.items():
            if info.is_required():
                continue
            factory = info.default_factory
            if factory is not None:
                # payhub's models use plain factories (dict, tuple): no validated-data argument
                defaults[name] = factory  # type: ignore[assignment]
            elif isinstance(info.default, _IMMUTABLE):
                defaults[name] = partial(_same, info.default)
            else:
                defaults[name] = partial(copy.deepcopy, info.default)
        shape = _SHAPES[cls] = (frozenset(cls.model_fields), defaults)
    return shape


def trusted(cls: type[M], values: dict[str, Any], *, complete: bool = False) -> M:
    """``cls.model_construct(**values)`` without its per-field loop.

    For hot paths, with ``values`` already checked. Fields not named take their
    defaults (as ``model_construct`` does, and are not counted as set); a
    value for an unknown field, or a required field left out, falls back on
    ``model_construct`` itself.

    ``complete=True`` says ``values`` names every field of ``cls`` (a literal
    written for it, which a test holds to ``cls.model_fields``), and skips
    the comparison.
    """
    names, defaults = _SHAPES.get(cls) or _shape(cls)
    if complete:
        given: Any = names
    else:
        given = values.keys()
        if given != names:
            if not given <= names or not names - given <= defaults.keys():
                return cls.model_construct(**values)
            values = {
                name: values[name] if name in values else defaults[name]()
                for name in cls.model_fields
            }
    model = _new(cls)
    _set_dict(model, values)
    _set_fields_set(model, set(given))
    _set_extra(model, None)
    _set_private(model, None)
    return model
