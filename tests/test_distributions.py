"""The distributions' names and the dependencies between them (issue 11 point 26).

``payhub`` on the package index is an unrelated project, so the core is
``payhub-cn`` (import name ``payhub``), and nothing may tell a user to
install ``payhub`` or ``payhub[extra]``: that would install the other project.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = {
    ".": "payhub-cn",
    "sandbox": "payhub-sandbox",
    "contrib/flask": "flask-payhub",
    "contrib/django": "payhub-django",
    "plugins/epay": "payhub-epay",
}
#: "payhub" as a requirement: bare, with extras, or with a version (not payhub-cn).
BARE_REQUIREMENT = re.compile(r"^payhub\s*(?:\[|[<>=!~;]|$)")
#: "pip install payhub", "payhub[redis]" in prose or messages.
BARE_INSTALL = re.compile(r"pip install '?payhub(?![-\w])|(?<![-\w])payhub\[[a-z]")


def _project(folder: str) -> dict:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize(("folder", "name"), PROJECTS.items())
def test_distribution_names(folder: str, name: str) -> None:
    project = _project(folder)
    assert project["name"] == name
    for requirement in project.get("dependencies", []):
        assert not BARE_REQUIREMENT.match(requirement), requirement


@pytest.mark.parametrize("folder", ["sandbox", "contrib/flask", "contrib/django", "plugins/epay"])
def test_the_other_distributions_depend_on_payhub_cn(folder: str) -> None:
    assert any(r.startswith("payhub-cn") for r in _project(folder)["dependencies"])


def test_the_core_keeps_its_import_name_extras_and_plugin_group() -> None:
    project = _project(".")
    assert {"postgres", "mysql", "redis", "xlsx", "calendar"} <= set(
        project["optional-dependencies"]
    )
    # Plugins (and the built-in channels) register under the import name.
    assert set(project["entry-points"]["payhub"]) == {"alipay", "unionpay", "wechat"}
    assert project["scripts"]["payhub"] == "payhub.cli:main"


def _texts() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for package in ("payhub", "sandbox", "contrib", "plugins", "scripts", "examples"):
        found += sorted(p for p in (ROOT / package).rglob("*") if p.suffix in {".py", ".md", ""})
    return [p for p in found if p.is_file()]


def test_nothing_tells_a_user_to_install_the_other_project() -> None:
    offenders = []
    for path in _texts():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if BARE_INSTALL.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    # The README says once, on purpose, what `pip install payhub` would do.
    offenders = [o for o in offenders if not o.startswith("README.md") or "unrelated" not in o]
    assert offenders == []


def test_the_readme_names_the_distribution() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`pip install payhub-cn`" in readme
    assert "| `payhub/` | `payhub-cn` |" in readme
