"""payhub and its companions are pure Python on public APIs (ARCHITECTURE.md, Conventions).

A compiled module or a reach into another library's internals makes payhub
break on the next release of that library, or install differently on each
platform; speed comes from doing less work instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    ROOT / "payhub",
    ROOT / "sandbox" / "payhub_sandbox",
    ROOT / "contrib" / "flask" / "flask_payhub",
    ROOT / "contrib" / "django" / "payhub_django",
]

#: what reaching into CPython's, pydantic's, json's or SQLAlchemy's internals looks like
PRIVATE = re.compile(
    r"_PyDict_|__pydantic_(fields_set|private|extra|validator)__"
    r"|json\.(scanner|decoder\.scanstring)|c_make_scanner|\.positiontup\b"
    r"|_decode_form_c|BaseModel\.__dict__"
)


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in package.rglob("*.py"))


def test_no_compiled_sources_or_build_script() -> None:
    compiled = [
        p
        for package in PACKAGES
        for pattern in ("*.c", "*.pyx", "*.pyi")
        for p in package.rglob(pattern)
    ]
    assert compiled == []
    assert not (ROOT / "setup.py").exists()


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_api_of_another_library(path: Path) -> None:
    hits = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert hits == []
