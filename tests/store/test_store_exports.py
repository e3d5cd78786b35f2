"""payhub.store and payhub.events export curated, sorted lists; the top level has the essentials."""

from __future__ import annotations

import importlib

import pytest

import payhub


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("name", ["payhub.store", "payhub.events", "payhub.cli"])
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_key)
    assert all(hasattr(module, item) for item in exported)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and isinstance(value, type)
        and (value.__module__ == name or value.__module__.startswith(name + "."))
    }
    assert public <= set(exported)


def test_top_level_exports_the_store_api() -> None:
    for item in (
        "AttemptOutcome",
        "Event",
        "EventType",
        "PaymentAttempt",
        "PaymentRecord",
        "PaymentState",
        "PaymentStateError",
        "Store",
        "StoreError",
        "SyncReport",
    ):
        assert item in payhub.__all__
