"""The exception tree: the drawing in errors.py is the truth, and errors carry what callers need."""

from __future__ import annotations

import builtins
import re

import pytest

import payhub.errors as errors_module
from payhub.errors import (
    ChannelError,
    ChannelTimeout,
    ErrorCode,
    NetworkError,
    NoEligibleChannel,
    PayhubError,
    UnknownChannelError,
)

_NODE_RE = re.compile(r"^(?P<indent>[ │]*)(?:[├└]── )?(?P<name>[A-Z][A-Za-z]+)(?P<rest>.*)$")


def _drawn_tree() -> list[tuple[str, str | None, str]]:
    """(class name, parent name, description text) for every node of the drawing."""
    doc = errors_module.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    nodes: list[tuple[str, str | None, str]] = []
    stack: list[tuple[int, str]] = []  # (column of the name, class name)
    for line in block.splitlines():
        if not line.strip():
            continue
        is_root = not stack
        if not is_root and "── " not in line:
            continue  # a continuation of the description above
        match = _NODE_RE.match(line)
        assert match, f"cannot read tree line {line!r}"
        column = match.start("name")
        while stack and stack[-1][0] >= column:
            stack.pop()
        parent = stack[-1][1] if stack else None
        assert is_root or parent is not None, f"{match['name']} has no parent in the drawing"
        nodes.append((match["name"], parent, match["rest"]))
        stack.append((column, match["name"]))
    return nodes


def test_drawing_is_read() -> None:
    nodes = _drawn_tree()
    assert nodes[0] == ("PayhubError", None, "")
    assert ("AmountError", "InvalidRequestError") in {(n, p) for n, p, _ in nodes}
    assert len(nodes) == len(set(nodes)) >= 14


def test_drawn_tree_matches_the_class_hierarchy() -> None:
    for name, parent, description in _drawn_tree():
        cls = getattr(errors_module, name, None)
        assert isinstance(cls, type), f"{name} is drawn but does not exist"
        assert issubclass(cls, PayhubError)
        if parent is None:
            continue
        parent_cls = getattr(errors_module, parent)
        assert issubclass(cls, parent_cls), f"{name} is drawn under {parent}"
        payhub_bases = [b for b in cls.__bases__ if issubclass(b, PayhubError)]
        assert payhub_bases == [parent_cls], f"{name}'s direct payhub base is not {parent}"
        also = re.search(r"\(also an? (\w+)\)", description)
        if also:
            assert issubclass(cls, getattr(builtins, also.group(1))), name


def test_every_exported_exception_is_drawn_once() -> None:
    drawn = [name for name, _, _ in _drawn_tree()]
    assert len(drawn) == len(set(drawn))
    exported = {
        name
        for name in errors_module.__all__
        if isinstance(getattr(errors_module, name), type)
        and issubclass(getattr(errors_module, name), BaseException)
    }
    assert exported == set(drawn)


def test_every_error_code_has_a_description() -> None:
    assert len(ErrorCode) > 10
    for code in ErrorCode:
        assert isinstance(code.description, str)
        assert len(code.description) > 10, code
        assert isinstance(code.retryable, bool)
    descriptions = [code.description for code in ErrorCode]
    assert len(descriptions) == len(set(descriptions)), "two codes share one description"


def test_every_error_class_has_its_own_code() -> None:
    classes = [getattr(errors_module, name) for name, _, _ in _drawn_tree()]
    for cls in classes:
        assert isinstance(cls.default_code, ErrorCode)
    codes = [cls.default_code for cls in classes if cls not in (PayhubError, ChannelError)]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (errors_module.ConfigurationError("x"), False),
        (errors_module.InvalidRequestError("x"), False),
        (errors_module.AmountError("x"), False),
        (errors_module.SignatureError("x"), False),
        (errors_module.NotificationRejected("x"), False),
        (errors_module.ProtocolError("x"), True),
        (NetworkError("x"), True),
        (ChannelTimeout("x"), True),
        (NoEligibleChannel("x"), False),
        (UnknownChannelError("x"), False),
        (ChannelError("x", channel="alipay"), False),
        (ChannelError("x", channel="alipay", code=ErrorCode.CHANNEL_UNAVAILABLE), True),
        (ChannelError("x", channel="wechat", code=ErrorCode.RATE_LIMITED), True),
        (ChannelError("x", channel="alipay", code=ErrorCode.TRADE_NOT_FOUND), False),
    ],
)
def test_retryable_defaults(error: PayhubError, retryable: bool) -> None:
    assert error.retryable is retryable
    assert error.retryable is error.code.retryable


def test_retryable_can_be_overridden() -> None:
    assert PayhubError("x", code=ErrorCode.NETWORK, retryable=False).retryable is False
    error = ChannelError("x", channel="a", code=ErrorCode.TRADE_CLOSED, retryable=True)
    assert error.retryable is True
    assert error.code is ErrorCode.TRADE_CLOSED


def test_timeout_is_a_network_error() -> None:
    # Callers that catch NetworkError must also see timeouts.
    with pytest.raises(NetworkError):
        raise ChannelTimeout("no answer; the trade may exist")
    assert ChannelTimeout("x").code is ErrorCode.TIMEOUT


def test_value_and_key_error_compatibility() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        raise errors_module.AmountError("bad amount")
    with pytest.raises(KeyError):
        raise UnknownChannelError("no channel account named 'x'")
    # KeyError.__str__ would add quotes; UnknownChannelError reads as its message.
    assert str(UnknownChannelError("no channel account named 'x'")) == (
        "no channel account named 'x'"
    )


def test_no_eligible_channel_carries_reasons() -> None:
    reasons = {"alipay": "does not support jsapi in CNY"}
    error = NoEligibleChannel("none", reasons=reasons)
    reasons["mutated"] = "after the fact"
    assert error.reasons == {"alipay": "does not support jsapi in CNY"}
    assert NoEligibleChannel("none").reasons == {}


def test_channel_error_carries_channel_fields() -> None:
    error = ChannelError(
        "alipay: trade does not exist",
        channel="alipay_main",
        channel_code="40004",
        channel_sub_code="ACQ.TRADE_NOT_EXIST",
        channel_message="交易不存在",
        code=ErrorCode.TRADE_NOT_FOUND,
        http_status=200,
        request_id="req-123",
    )
    assert error.channel == "alipay_main"
    assert error.channel_code == "40004"
    assert error.channel_sub_code == "ACQ.TRADE_NOT_EXIST"
    assert error.channel_message == "交易不存在"
    assert error.http_status == 200
    assert error.request_id == "req-123"
    assert error.code is ErrorCode.TRADE_NOT_FOUND
    assert error.retryable is False
    assert str(error) == "alipay: trade does not exist"
    text = repr(error)
    for shown in ("alipay_main", "40004", "ACQ.TRADE_NOT_EXIST", "TRADE_NOT_FOUND"):
        assert shown in text


def test_channel_error_repr_contains_no_secret() -> None:
    # Alipay echoes its whole string-to-sign in sub_msg on isv.invalid-signature;
    # it must not reach logs through repr().
    echoed = "app_id=2021&biz_content={...}&sign=MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    error = ChannelError(
        "alipay: invalid signature",
        channel="alipay",
        channel_code="40002",
        channel_sub_code="isv.invalid-signature",
        channel_message=echoed,
        code=ErrorCode.SIGNATURE_INVALID,
    )
    assert "MIIEvQ" not in repr(error)
    assert "MIIEvQ" not in str(error)
    assert "isv.invalid-signature" in repr(error)


def test_base_repr() -> None:
    assert repr(errors_module.SignatureError("signature does not verify")) == (
        "SignatureError('signature does not verify', code=SIGNATURE_INVALID)"
    )
