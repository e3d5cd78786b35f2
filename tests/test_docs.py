"""The documentation states what the code does."""

from __future__ import annotations

import runpy
from pathlib import Path

from payhub.errors import ErrorCode

ROOT = Path(__file__).resolve().parent.parent


def test_error_manual_is_generated_from_the_code_tables() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_error_docs.py"))
    manual = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert manual == generator["render"](), "run: python scripts/gen_error_docs.py"
    for code in ErrorCode:
        assert f"`{code.name}`" in manual


def test_readme_states_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./scripts/demo" in readme
    assert "./scripts/test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/test" in ci
