"""The adapters' public modules: curated, sorted ``__all__``, public ``__module__``."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["flask_payhub", "payhub_django", "payhub_django.signals", "payhub_django.views"]


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(set(exported), key=_isort_key)
    assert all(hasattr(module, item) for item in exported)
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(exported)


@pytest.mark.parametrize("name", ["flask_payhub", "payhub_django"])
def test_exports_name_the_public_module(name: str) -> None:
    module = importlib.import_module(name)
    for item in module.__all__:
        value = getattr(module, item)
        if isinstance(value, type) or (callable(value) and hasattr(value, "__code__")):
            assert value.__module__ == name, item
