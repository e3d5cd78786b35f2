"""Watching the backlog: ``payhub health`` checks, Prometheus metrics, and alerts
to DingTalk, Feishu and WeCom group robots or a webhook (``docs/monitor.md``)."""

from payhub.monitor._alerts import (
    Alert,
    Alerter,
    AlertSink,
    DingTalkSink,
    FeishuSink,
    WebhookSink,
    WeComSink,
    dingtalk_sign,
    feishu_sign,
)
from payhub.monitor._health import (
    CHECKS,
    CheckResult,
    CheckStatus,
    HealthConfig,
    HealthContext,
    HealthReport,
    exit_code,
    register_check,
    run_checks,
)
from payhub.monitor._metrics import Metrics, exposition

__all__ = [
    "CHECKS",
    "Alert",
    "AlertSink",
    "Alerter",
    "CheckResult",
    "CheckStatus",
    "DingTalkSink",
    "FeishuSink",
    "HealthConfig",
    "HealthContext",
    "HealthReport",
    "Metrics",
    "WeComSink",
    "WebhookSink",
    "dingtalk_sign",
    "exit_code",
    "exposition",
    "feishu_sign",
    "register_check",
    "run_checks",
]
