"""Channel interface and the built-in channels (one sub-package each)."""

from payhub.channels._base import (
    Channel,
    Flow,
    HeadersInput,
    as_headers,
    run_flow_async,
    run_flow_sync,
)
from payhub.channels._bills import BillReader, BillStream
from payhub.channels._fundflow import FundFlowLine, FundFlowReader, FundFlowStream
from payhub.channels._splitting import NoSplits, SplitOperations, not_supported

__all__ = [
    "BillReader",
    "BillStream",
    "Channel",
    "Flow",
    "FundFlowLine",
    "FundFlowReader",
    "FundFlowStream",
    "HeadersInput",
    "NoSplits",
    "SplitOperations",
    "as_headers",
    "not_supported",
    "run_flow_async",
    "run_flow_sync",
]
