"""``import payhub`` stays light: heavy parts are imported on first use.

Each check runs in a fresh interpreter, so what the test session already
imported does not hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "httpx", "payhub.channels", "payhub.cli", "payhub.store", "payhub.hub")


def _imported_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return set(json.loads(out))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("statement", ["import payhub.money", "import payhub"])
def test_light_imports_leave_the_heavy_parts_out(statement: str) -> None:
    assert _heavy(_imported_after(statement)) == []


def test_a_public_name_imports_its_module_on_first_use() -> None:
    modules = _imported_after("from payhub import Money, PayHub")
    assert {"payhub.money", "payhub.hub", "httpx", "sqlalchemy"} <= modules
    assert "payhub.cli" not in modules


def test_every_public_name_resolves_lazily() -> None:
    import payhub

    for name in payhub.__all__:
        assert getattr(payhub, name) is not None, name
    assert payhub.store.Store is payhub.Store  # a subpackage, imported on access
    with pytest.raises(AttributeError):
        payhub.no_such_name  # noqa: B018
