"""The documentation states what the code does.

Generated pages equal their generator's output; the troubleshooting manual has
an entry for every code the code maps, in English and Chinese; every Python
block of the quick starts runs, in order, against a live local sandbox.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from payhub.channels.alipay import ALIPAY_ERROR_CODES
from payhub.channels.unionpay import RESP_CODES
from payhub.channels.wechat import WECHAT_ERROR_CODES
from payhub.errors import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUICK_STARTS = [DOCS / "quickstart.md", DOCS / "zh" / "quickstart.md"]
#: The sandbox URL the quick starts are written for (`payhub-sandbox run --port 8000`).
DOC_SANDBOX = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def generator() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "scripts" / "gen_error_docs.py"))


def test_error_manual_is_generated_from_the_code_tables(generator: dict[str, Any]) -> None:
    manual = (DOCS / "errors.md").read_text(encoding="utf-8")
    assert manual == generator["render"](), "run: python scripts/gen_error_docs.py"
    for code in ErrorCode:
        assert f"`{code.name}`" in manual


def test_troubleshooting_manuals_are_generated(generator: dict[str, Any]) -> None:
    for lang, path in generator["TROUBLESHOOTING"].items():
        assert path.read_text(encoding="utf-8") == generator["render_troubleshooting"](lang), (
            "run: python scripts/gen_error_docs.py"
        )
    assert generator["main"](["--check"]) == 0


def test_every_mapped_code_has_guidance_in_both_languages(generator: dict[str, Any]) -> None:
    guidance = generator["load_guidance"]()
    assert generator["problems"](guidance) == []
    pages = {lang: p.read_text(encoding="utf-8")
             for lang, p in generator["TROUBLESHOOTING"].items()}
    sections = {
        "unified": [c.name for c in ErrorCode],
        "alipay": list(ALIPAY_ERROR_CODES),
        "wechat": list(WECHAT_ERROR_CODES),
        "unionpay": list(RESP_CODES),
    }
    for section, codes in sections.items():
        for code in codes:
            heading = f"### `{code}` {{#{generator['anchor'](section, code)}}}"
            for lang, page in pages.items():
                assert heading in page, f"{lang}: {section} {code} has no section"
                block = page.split(heading, 1)[1].split("\n### ", 1)[0]
                for label in ("money", "retry", "who", "steps", "buyer"):
                    text = guidance["text"][lang][label]
                    assert f"**{text}**" in block, f"{lang}: {section} {code} lacks {label}"


def test_a_missing_entry_is_reported(generator: dict[str, Any]) -> None:
    guidance = generator["load_guidance"]()
    del guidance["wechat"]["SYSTEM_ERROR"]
    del guidance["unified"]["UNKNOWN_REFUND"]["buyer_zh"]
    del guidance["alipay"]["ACQ.TRADE_HAS_SUCCESS"]["meaning_en"]
    guidance["unionpay"]["30"]["retry"] = "yes"  # a non-retryable code said to be retryable
    guidance["alipay"]["ACQ.NOT_A_CODE"] = {"meaning_en": "x", "meaning_zh": "x"}
    assert generator["problems"](guidance) == [
        "unified.UNKNOWN_REFUND: no buyer (zh)",
        "alipay.ACQ.TRADE_HAS_SUCCESS: no meaning_en",
        "alipay.ACQ.NOT_A_CODE: not in payhub's tables",
        "wechat.SYSTEM_ERROR: no entry",
        "unionpay.30: retry 'yes' but the code is not retryable",
    ]


def test_the_stories_the_manual_promises_are_there() -> None:
    en = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    zh = (DOCS / "zh" / "troubleshooting.md").read_text(encoding="utf-8")
    wechat_system_error = en.split("{#wechat-system-error}", 1)[1].split("\n### ", 1)[0]
    assert "**Retry?** Not before a query" in wechat_system_error
    assert "same** `out_refund_no`" in wechat_system_error
    assert "request **reached** Alipay" in en
    for code in ("03", "04", "05"):
        block = zh.split(f"{{#unionpay-{code}}}", 1)[1].split("\n### ", 1)[0]
        assert "先查询" in block or "查询" in block


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", page.read_text(encoding="utf-8"), re.M | re.S)


def test_readme_states_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./scripts/demo" in readme
    assert "./scripts/test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/test" in ci
    assert ".venv/bin/mkdocs build --strict" in ci
    assert ",docs]" in (ROOT / "scripts" / "test").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", QUICK_STARTS, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_quick_start_runs(
    page: Path, payhub_sandbox_live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks(page)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    for block in blocks:
        assert DOC_SANDBOX not in block or block.count(DOC_SANDBOX) == 1
        code = compile(block.replace(DOC_SANDBOX, payhub_sandbox_live.url), str(page), "exec")
        exec(code, namespace)
    out_trade_no = namespace["out_trade_no"]
    assert namespace["delivered"] == [out_trade_no]
    assert namespace["payment"].status.value == "paid"
    assert namespace["refund"].status.value == "succeeded"
    # the sandbox, playing Alipay, agrees: paid 30.00, 10.00 of it refunded
    trade = payhub_sandbox_live.sandbox.alipay_trade(namespace["APP_ID"], out_trade_no)
    assert (trade.state.value, trade.amount.minor, trade.refunded.minor) == ("PAID", 3000, 1000)


OWN_PAGES = [
    DOCS / "quickstart.md",
    DOCS / "guide-fakaweb.md",
    DOCS / "zh" / "quickstart.md",
    DOCS / "zh" / "guide-fakaweb.md",
]


@pytest.mark.parametrize("page", OWN_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_example_is_valid_python(page: Path) -> None:
    for block in python_blocks(page):
        compile(block, str(page), "exec")


@pytest.mark.parametrize("page", OWN_PAGES[1::2], ids=lambda p: str(p.relative_to(DOCS)))
def test_the_guide_lists_every_refund_request_field(page: Path) -> None:
    from payhub import RefundRequest

    text = page.read_text(encoding="utf-8")
    table = "| `out_trade_no` |" + text.split("| `out_trade_no` |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)`(?:(?:, |、)`(\w+)`)? \|", table, re.M))
    names = {name for pair in listed for name in pair if name}
    assert names == set(RefundRequest.model_fields)



@pytest.mark.parametrize("page", OWN_PAGES[1::2], ids=lambda p: str(p.relative_to(DOCS)))
def test_the_guide_flask_shop_starts_with_its_handler_path(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    merchant_keys: Any,
    platform_keys: Any,
) -> None:
    """The guide's Flask app, its configuration and `module:function` handler are real."""
    blocks = python_blocks(page)
    app_block = next(b for b in blocks if "PayHubExtension(app)" in b)
    delivery_block = next(b for b in blocks if b.startswith("# shop/delivery.py"))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "alipay-app-private.pem").write_text(merchant_keys.private_pem)
    (tmp_path / "keys" / "alipay-public.pem").write_text(platform_keys.public_pem)
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "delivery.py").write_text(delivery_block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shop", raising=False)
    monkeypatch.delitem(sys.modules, "shop.delivery", raising=False)
    monkeypatch.setenv("PAYHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    namespace: dict[str, Any] = {"__name__": "shop_app"}
    exec(compile(app_block, str(page), "exec"), namespace)
    app = namespace["app"]
    rules = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    assert rules["/payhub/notify/<channel>"] == "payhub.notify"
    assert rules["/buy/<sku>"] == "buy"
    from flask import url_for
    from flask_payhub import current_hub

    with app.test_request_context():
        assert url_for("payhub.notify", channel="alipay", _external=True) == (
            "http://localhost/payhub/notify/alipay"
        )
        assert list(current_hub().channels) == ["alipay"]
    # the handler named "shop.delivery:deliver_card" was imported from the shop's module
    assert sys.modules["shop.delivery"].__file__ == str(tmp_path / "shop" / "delivery.py")
