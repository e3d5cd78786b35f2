"""The layers of ARCHITECTURE.md: a lower layer never imports a higher one,
and the core never imports Flask or Django."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PAYHUB = Path(__file__).resolve().parent.parent / "payhub"

#: module prefix -> layer (1 = values ... 7 = operations, 8 = facade)
LAYERS: dict[str, int] = {
    "payhub.money": 1,
    "payhub.models": 1,
    "payhub.errors": 1,
    "payhub.config": 1,
    "payhub.tz": 1,
    "payhub.events": 1,
    # the split (分账) and transfer requests and results the channels speak
    "payhub.splits_models": 1,
    "payhub.signing": 2,
    "payhub.channels": 3,
    # The hook markers: channels need ``hookimpl`` to register themselves, so the
    # spec module sits with them; the registry that loads plugins sits above.
    "payhub.hookspecs": 3,
    "payhub.plugins": 4,
    "payhub.routing": 5,
    "payhub.fees": 5,
    "payhub.lifecycle": 5,
    "payhub.splits": 5,
    "payhub.settlement": 5,
    "payhub.risk": 5,
    # reconciliation's pure decisions (one bill row against the store)
    "payhub.bill_match": 5,
    "payhub.store": 6,
    # beside the store: the store builds its poster at construction (docs/ledger.md)
    "payhub.ledger": 6,
    # operations over the store: report runs, streaming exports, schedules
    "payhub.reports": 7,
    "payhub.audit": 7,
    "payhub.monitor": 7,
    # the facade: the hub package (one module per job) and its old import path
    "payhub.hub": 8,
    "payhub.web": 8,
    "payhub.client": 8,
    "payhub.cli": 8,
    "payhub.cli_reviews": 8,
    "payhub.cli_health": 8,
    "payhub.cli_audit": 8,
    # reconciliation's runner: bills through the hub, repairs through hub.sync
    "payhub.recon": 8,
    "payhub": 8,
}
FORBIDDEN = ("flask", "django", "werkzeug", "payhub_sandbox", "flask_payhub", "payhub_django")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PAYHUB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else (
        _module_name(path)
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # ``from payhub import hookspecs`` imports payhub.hookspecs, not the facade
            found += [f"{origin}.{alias.name}" for alias in node.names]
    return found


SOURCES = sorted(p for p in PAYHUB.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PAYHUB)))
def test_lower_layers_never_import_higher_ones(path: Path) -> None:
    module = _module_name(path)
    mine = _layer(module)
    for imported in _imports(path):
        assert imported.split(".")[0] not in FORBIDDEN, f"{module} imports {imported}"
        if imported == "payhub" or imported.startswith("payhub."):
            assert _layer(imported) <= mine, f"{module} (layer {mine}) imports {imported}"


def test_the_hub_package_is_the_facade() -> None:
    """payhub.hub sits at the facade layer; payhub.client is only a shim over it."""
    assert _layer("payhub.hub._paying") == _layer("payhub") == max(LAYERS.values())
    shim = PAYHUB / "client.py"
    assert all(name.startswith("payhub.hub.") for name in _imports(shim))
    assert len(shim.read_text(encoding="utf-8").splitlines()) < 40
    for path in (PAYHUB / "hub").glob("*.py"):
        assert "payhub.client" not in _imports(path), path


def test_the_architecture_page_names_every_layer_as_enforced_here() -> None:
    """docs/architecture.md's layer table is this test's LAYERS, package for package."""
    page = (PAYHUB.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    documented: dict[str, int] = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or not cells[1][:1].isdigit():
            continue
        layer = int(cells[1].split()[0])
        for name in re.findall(r"`(payhub(?:\.[a-z_]+)*)`", cells[2]):
            documented[name] = layer
    assert documented == LAYERS
