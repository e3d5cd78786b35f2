"""Every public package has a curated, sorted ``__all__`` whose names exist."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "payhub",
    "payhub.channels",
    "payhub.fees",
    "payhub.hub",
    "payhub.reports",
    "payhub.routing",
    "payhub.settlement",
    "payhub.signing",
    "payhub.splits",
]


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert exported, f"{name}.__all__ is empty"
    assert all(isinstance(item, str) for item in exported)
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("name", PACKAGES)
def test_star_import_gives_exactly_all(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(importlib.import_module(name).__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_exported(name: str) -> None:
    """A public class or function defined for the package's users is in ``__all__``."""
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and isinstance(value, type)
        and getattr(value, "__module__", "").startswith(name)
    }
    assert public <= set(module.__all__), f"{name}: not exported: {public - set(module.__all__)}"


def test_top_level_exports_the_essentials() -> None:
    import payhub

    for item in ("PayHub", "AsyncPayHub", "PaymentRequest", "Money", "PayhubError", "hookimpl"):
        assert item in payhub.__all__
    assert payhub.__version__
