"""The example in docs/store.md runs, and the guarantees table names real tests."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
HERE = Path(__file__).resolve().parent


def test_store_doc_example_runs() -> None:
    result = doctest.testfile(
        str(DOCS / "store.md"), module_relative=False, optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0
    assert result.attempted >= 8


def test_guarantee_table_names_existing_tests() -> None:
    text = (DOCS / "store.md").read_text(encoding="utf-8")
    named = re.findall(r"`(test_store_\w+\.py)(?:::(test_\w+))?`", text)
    assert len(named) >= 6
    module = None
    for filename, test in named:
        module = filename
        source = (HERE / module).read_text(encoding="utf-8")
        if test:
            assert f"def {test}(" in source, f"{module}::{test}"
    for test in re.findall(r"`::(test_\w+)`", text):
        assert any(f"def {test}(" in p.read_text() for p in HERE.glob("test_store_*.py")), test


def test_lifecycle_page_is_drawn_from_the_table() -> None:
    """docs/lifecycle.md is generated from payhub.lifecycle.TABLE; regenerate it
    with ``python -m payhub.lifecycle > docs/lifecycle.md`` after changing the table."""
    from payhub import lifecycle

    page = (DOCS / "lifecycle.md").read_text(encoding="utf-8")
    assert page == lifecycle.markdown()
    for row in lifecycle.TABLE:
        assert row.when in lifecycle.CONDITIONS
