"""The hub's short I/O loops are written twice, sync and async (as httpx and
anthropic do); this keeps each pair in step.

Each ``async def name_async`` in a ``payhub/hub`` job module, and each
operation of :class:`AsyncPayHub`, must equal its sync twin once ``await``,
``async`` and the ``_async`` suffixes are removed, docstrings aside.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parent.parent / "payhub" / "hub"

#: Twins that differ on purpose, and why.
DIFFERENT_ON_PURPOSE = {
    # the sync hub cannot await a coroutine handler: it closes it and says so
    ("_events.py", "run_handlers"),
    # the I/O primitives themselves: httpx.Client vs AsyncClient, in place vs a thread
    ("_sync.py/_async.py", "__init__"),
    ("_sync.py/_async.py", "_run_flow"),
    ("_sync.py/_async.py", "_call_store"),
    ("_sync.py/_async.py", "_call_router"),
}
#: Lifetime methods named differently (the context-manager protocols).
RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}


class _Unasync(ast.NodeTransformer):
    """Turn async code into what its sync twin should read."""

    def visit_Await(self, node: ast.Await) -> ast.AST:
        return self.visit(node.value)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        self.generic_visit(node)
        return ast.FunctionDef(
            name=_sync_name(node.name),
            args=node.args,
            body=node.body,
            decorator_list=node.decorator_list,
            returns=node.returns,
            type_comment=node.type_comment,
            type_params=getattr(node, "type_params", []),
        )

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        return ast.For(node.target, node.iter, node.body, node.orelse, node.type_comment)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        self.generic_visit(node)
        return ast.With(node.items, node.body, node.type_comment)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Name(id=_sync_name(node.id), ctx=node.ctx)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        return ast.Attribute(value=node.value, attr=_sync_name(node.attr), ctx=node.ctx)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):  # annotations as strings
            return ast.Constant(value=node.value.replace("AsyncPayHub", "PayHub"))
        return node


def _sync_name(name: str) -> str:
    name = RENAMED.get(name, name)
    if name == "AsyncPayHub":
        return "PayHub"
    return name.removesuffix("_async")


def _without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        node.body = body[1:] or [ast.Pass()]


def _dump(node: ast.FunctionDef | ast.AsyncFunctionDef, *, unasync: bool) -> str:
    node = ast.parse(ast.unparse(node)).body[0]  # a copy
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    _without_docstring(node)
    if unasync:
        node = _Unasync().visit(node)
    return ast.dump(node, include_attributes=False)


def _functions(body: list[ast.stmt]) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _module_pairs() -> list[tuple[str, str, ast.AST, ast.AST]]:
    pairs = []
    for path in sorted(HUB.glob("_*.py")):
        functions = _functions(ast.parse(path.read_text(encoding="utf-8")).body)
        for name, node in functions.items():
            if isinstance(node, ast.AsyncFunctionDef):
                twin = functions.get(_sync_name(name))
                assert twin is not None, f"{path.name}: {name} has no sync twin"
                pairs.append((path.name, _sync_name(name), twin, node))
    return pairs


def _class(path: Path, name: str) -> ast.ClassDef:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _hub_pairs() -> list[tuple[str, str, ast.AST, ast.AST]]:
    sync = _functions(_class(HUB / "_sync.py", "PayHub").body)
    async_ = _functions(_class(HUB / "_async.py", "AsyncPayHub").body)
    assert {_sync_name(n) for n in async_} == set(sync), "the hubs offer different methods"
    return [
        ("_sync.py/_async.py", _sync_name(name), sync[_sync_name(name)], node)
        for name, node in async_.items()
    ]


PAIRS = _module_pairs() + _hub_pairs()


@pytest.mark.parametrize(
    ("where", "name", "sync", "async_"), PAIRS, ids=[f"{p[0]}:{p[1]}" for p in PAIRS]
)
def test_async_twin_reads_as_its_sync_twin(
    where: str, name: str, sync: ast.FunctionDef, async_: ast.AsyncFunctionDef
) -> None:
    same = _dump(sync, unasync=False) == _dump(async_, unasync=True)
    if (where, name) in DIFFERENT_ON_PURPOSE:
        assert not same, f"{where}:{name} no longer differs: drop it from DIFFERENT_ON_PURPOSE"
    else:
        assert same, (
            f"{where}: {name} and its async twin differ beyond await/async:\n"
            f"{ast.unparse(sync)}\n---\n{ast.unparse(async_)}"
        )


def test_every_loop_that_takes_the_sync_hub_has_an_async_twin() -> None:
    for path in sorted(HUB.glob("_*.py")):
        functions = _functions(ast.parse(path.read_text(encoding="utf-8")).body)
        for name, node in functions.items():
            first = node.args.args[0] if node.args.args else None
            annotation = ast.unparse(first.annotation) if first and first.annotation else ""
            if annotation == "PayHub":
                assert f"{name}_async" in functions, f"{path.name}: {name} has no async twin"


def test_the_interpreter_is_gone() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in HUB.glob("*.py"))
    for name in ("_drive", "_Call", "_Blocking", "_Routing", "_Dispatch", "_Deliver", "Steps["):
        assert name not in source, name
