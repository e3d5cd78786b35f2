"""The tables of the payment store (SQLAlchemy Core).

Every table is prefixed ``payhub_`` so the store can share a database with the
shop's own tables. The Alembic migrations in ``payhub/store/migrations`` create
exactly these tables; a test compares the two (and, on MySQL/MariaDB, the
collation of every text column).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from payhub.store._types import BigId, Blob, ExactString, UTCDateTime

__all__ = [
    "APPEND_ONLY",
    "CHAINED",
    "VERSION_TABLE",
    "anomalies",
    "attempts",
    "audit",
    "chain_head",
    "events",
    "ledger_accounts",
    "ledger_batch_members",
    "ledger_batches",
    "ledger_entries",
    "ledger_holds",
    "ledger_lines",
    "ledger_parties",
    "ledger_withdrawals",
    "metadata",
    "notifications",
    "payments",
    "payouts",
    "recon_items",
    "recon_repairs",
    "recon_runs",
    "refunds",
    "report_runs",
    "report_schedules",
    "report_templates",
    "risk_audit",
    "risk_reviews",
    "splits",
]

#: Alembic's version table, named so it does not clash with the shop's own migrations.
VERSION_TABLE = "payhub_alembic_version"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: InnoDB for row locks and transactions, utf8mb4. Every text column is an
#: ExactString: on MySQL/MariaDB a binary NO PAD collation, because identifiers
#: compare byte for byte ("A1" and "a1" are two orders, and so are "A1" and
#: "A1 "); since migration 0005 it is the tables' default collation too (which
#: depends on the server, so it is not named here).
TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
}

payments = sa.Table(
    "payhub_payments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("out_trade_no", ExactString(64), nullable=False, unique=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    sa.Column("subject", ExactString(256), nullable=False),
    sa.Column("method", ExactString(16), nullable=False),
    sa.Column("status", ExactString(24), nullable=False),
    #: the channel account that took the payment (its pay() succeeded, or it was paid there)
    sa.Column("channel", ExactString(64)),
    sa.Column("channel_trade_id", ExactString(128)),
    #: JSON object: that channel's PaymentResult.channel_context (migration 0002)
    sa.Column("channel_context", sa.Text),
    sa.Column("paid_at", UTCDateTime),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    #: refund notifications wait for this payment to be paid (migration 0007)
    sa.Column("deferred_refunds", sa.Boolean, nullable=False, server_default=sa.false()),
    #: a risk rule holds it for review: its credit writes payment.review, not
    #: payment.succeeded, until approved (migration 0008)
    sa.Column("risk_hold", sa.Boolean, nullable=False, server_default=sa.false()),
    #: the seller of a multi-seller platform; NULL: the shop itself (migration 0010)
    sa.Column("seller", ExactString(64)),
    sa.Index(None, "status", "created_at"),
    #: a refund notification may name its payment only by the channel's trade id
    #: (UnionPay's origQryId) (migration 0003)
    sa.Index(None, "channel", "channel_trade_id"),
    #: reconciliation reads a channel's payments of a day (migration 0011)
    sa.Index(None, "channel", "paid_at"),
    **TABLE_OPTIONS,
)

attempts = sa.Table(
    "payhub_attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("payment_id", BigId, sa.ForeignKey("payhub_payments.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("channel", ExactString(64), nullable=False),
    sa.Column("outcome", ExactString(24), nullable=False),
    sa.Column("error_code", ExactString(48)),
    sa.Column("channel_code", ExactString(64)),
    sa.Column("message", ExactString(255)),
    sa.Column("may_exist", sa.Boolean, nullable=False),
    sa.Column("channel_trade_id", ExactString(128)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("payment_id", "seq"),
    **TABLE_OPTIONS,
)

notifications = sa.Table(
    "payhub_notifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("channel", ExactString(64), nullable=False),
    #: stable per channel event (see Notification.event_key); hashed if longer
    sa.Column("event_key", ExactString(191), nullable=False),
    sa.Column("kind", ExactString(24), nullable=False),
    sa.Column("out_trade_no", ExactString(64), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("raw_body", Blob, nullable=False),
    #: the parsed notification (without raw_body), kept only for a deferred
    #: refund, to apply it later (nullable since migration 0007)
    sa.Column("payload", sa.JSON),
    #: applied / duplicate / review / deferred / ignored
    sa.Column("outcome", ExactString(16), nullable=False),
    sa.Column("processed_at", UTCDateTime),
    #: the key that encrypted raw_body and payload; NULL: stored in clear (migration 0010)
    sa.Column("key_id", ExactString(16)),
    #: HMAC-SHA256 of the payer's id at the channel, for lookups (migration 0010)
    sa.Column("buyer_hash", ExactString(64)),
    sa.UniqueConstraint("channel", "event_key"),
    sa.Index(None, "out_trade_no", "outcome"),
    sa.Index(None, "buyer_hash"),
    **TABLE_OPTIONS,
)

refunds = sa.Table(
    "payhub_refunds",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("out_refund_no", ExactString(64), nullable=False, unique=True),
    sa.Column("payment_id", BigId, sa.ForeignKey("payhub_payments.id"), nullable=False),
    sa.Column("channel", ExactString(64), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    #: pending (reserved, counts against the refundable amount) / succeeded / failed
    sa.Column("status", ExactString(16), nullable=False),
    sa.Column("channel_refund_id", ExactString(128)),
    sa.Column("reason", ExactString(256)),
    #: hub (asked through hub.refund) or notification (learnt from the channel)
    sa.Column("origin", ExactString(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    #: JSON object: the refund's RefundRequest.refund_context (migration 0004)
    sa.Column("channel_context", sa.Text),
    #: a refund of a duplicate or late payment: the anomaly it returns (migration 0006)
    sa.Column("anomaly_id", BigId),
    #: when the channel says it succeeded (else when payhub learnt it): the day
    #: its bill lists it on (migration 0015)
    sa.Column("succeeded_at", UTCDateTime),
    sa.Index(None, "payment_id"),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "anomaly_id"),
    #: reconciliation reads a channel's refunds of a day (migration 0015)
    sa.Index(None, "channel", "succeeded_at"),
    **TABLE_OPTIONS,
)

events = sa.Table(
    "payhub_events",
    metadata,
    #: the order events were written in (also within one transaction)
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    #: the stable id handlers see
    sa.Column("id", ExactString(32), nullable=False, unique=True),
    sa.Column("type", ExactString(48), nullable=False),
    sa.Column("out_trade_no", ExactString(64)),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("dispatched_at", UTCDateTime),
    #: a dispatcher holds the event until then; after it, another may take it
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", ExactString(512)),
    sa.Index(None, "dispatched_at", "seq"),
    sa.Index(None, "out_trade_no"),
    **TABLE_OPTIONS,
)

anomalies = sa.Table(
    "payhub_anomalies",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    #: what makes it one anomaly (kind, channel, channel trade): recorded once
    sa.Column("key", ExactString(191), nullable=False, unique=True),
    #: duplicate_payment / late_payment / amount_mismatch / orphan_refund
    sa.Column("kind", ExactString(24), nullable=False),
    sa.Column("out_trade_no", ExactString(64), nullable=False),
    sa.Column("payment_id", BigId, sa.ForeignKey("payhub_payments.id")),
    sa.Column("channel", ExactString(64), nullable=False),
    sa.Column("channel_trade_id", ExactString(128)),
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("currency", ExactString(3)),
    sa.Column("source", ExactString(320), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    #: open (to refund or review) / resolved
    sa.Column("status", ExactString(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    #: who resolved it (an operator, or "payhub" for a refund) and why (migration 0006)
    sa.Column("resolved_by", ExactString(128)),
    sa.Column("resolution", ExactString(512)),
    sa.Index(None, "out_trade_no"),
    **TABLE_OPTIONS,
)

audit = sa.Table(
    "payhub_audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("payment_id", BigId, sa.ForeignKey("payhub_payments.id"), nullable=False),
    sa.Column("from_status", ExactString(24)),
    sa.Column("to_status", ExactString(24), nullable=False),
    #: pay / notification / sync / return / refund / close
    sa.Column("cause", ExactString(16), nullable=False),
    #: what caused it: inbox key, channel query, out_refund_no
    sa.Column("source", ExactString(320), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    #: its place and link in the audit chain (migration 0010; payhub.store._chain)
    sa.Column("chain_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("chain_hash", ExactString(64), nullable=False),
    sa.Index(None, "payment_id"),
    **TABLE_OPTIONS,
)

#: The review queue: payments a risk rule held (migration 0008).
risk_reviews = sa.Table(
    "payhub_risk_reviews",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("payment_id", BigId, sa.ForeignKey("payhub_payments.id"), nullable=False),
    sa.Column("out_trade_no", ExactString(64), nullable=False, unique=True),
    #: open / approved / declined
    sa.Column("status", ExactString(16), nullable=False),
    #: the rule that decided, and every rule that matched
    sa.Column("rule", ExactString(64), nullable=False),
    sa.Column("verdict", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", ExactString(128)),
    sa.Column("note", ExactString(512)),
    #: the refund a decline sent (its number, so a second decline resends the same)
    sa.Column("out_refund_no", ExactString(64)),
    sa.Index(None, "status", "created_at"),
    **TABLE_OPTIONS,
)

#: Every risk decision and review action, never updated or deleted (migration 0008):
#: block, review and observe hits at pay time, approve and decline by a person.
risk_audit = sa.Table(
    "payhub_risk_audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("out_trade_no", ExactString(64), nullable=False),
    #: block / review / observe / approve / decline
    sa.Column("action", ExactString(16), nullable=False),
    sa.Column("rule", ExactString(64)),
    sa.Column("actor", ExactString(128), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("chain_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("chain_hash", ExactString(64), nullable=False),
    sa.Index(None, "out_trade_no"),
    sa.Index(None, "at"),
    **TABLE_OPTIONS,
)

# -- reports (migration 0009): payhub.reports keeps its runs, templates and schedules here

report_templates = sa.Table(
    "payhub_report_templates",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", ExactString(64), nullable=False, unique=True),
    sa.Column("report_type", ExactString(48), nullable=False),
    #: JSON list of [field, header] pairs, in column order
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    **TABLE_OPTIONS,
)

report_schedules = sa.Table(
    "payhub_report_schedules",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", ExactString(64), nullable=False, unique=True),
    sa.Column("report_type", ExactString(48), nullable=False),
    #: JSON object: the filters other than the time range (the period gives it)
    sa.Column("filters", sa.JSON, nullable=False),
    sa.Column("template", ExactString(64)),
    sa.Column("format", ExactString(8), nullable=False),
    #: daily / weekly / monthly
    sa.Column("frequency", ExactString(8), nullable=False),
    #: wall-clock "HH:MM" in ``timezone``; weekly: ISO weekday 1-7, monthly: day 1-28
    sa.Column("at_time", ExactString(5), nullable=False),
    sa.Column("day", sa.Integer),
    sa.Column("timezone", ExactString(64), nullable=False),
    sa.Column("output_dir", ExactString(1024), nullable=False),
    sa.Column("retention_days", sa.Integer),
    #: where the password comes from: the NAME of an environment variable, never the password
    sa.Column("password_env", ExactString(128)),
    sa.Column("part_rows", sa.Integer),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    #: the next moment a run is due (UTC); run-due advances it in the claiming transaction
    sa.Column("next_run_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "enabled", "next_run_at"),
    **TABLE_OPTIONS,
)

report_runs = sa.Table(
    "payhub_report_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("report_type", ExactString(48), nullable=False),
    #: JSON object: filters (range as ISO times, time zone), template, columns, format,
    #: part size, whether encrypted: never a password
    sa.Column("parameters", sa.JSON, nullable=False),
    #: pending / running / succeeded / failed
    sa.Column("status", ExactString(16), nullable=False),
    sa.Column("schedule_id", BigId, sa.ForeignKey("payhub_report_schedules.id")),
    #: the schedule's period this run covers: one run per (schedule, period)
    sa.Column("period_start", UTCDateTime),
    sa.Column("path", ExactString(1024)),
    sa.Column("rows", sa.BigInteger),
    sa.Column("parts", sa.Integer),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("sha256", ExactString(64)),
    sa.Column("error", ExactString(1024)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    #: the retention policy removed the file then
    sa.Column("expired_at", UTCDateTime),
    #: who runs it (host:pid:token) and when it last said so (migration 0014): a
    #: running run whose heartbeat is older than the lease is reclaimed as failed
    sa.Column("owner", ExactString(128)),
    sa.Column("heartbeat_at", UTCDateTime),
    #: the how-many-th run of its schedule period (a reclaimed one is run again)
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.UniqueConstraint("schedule_id", "period_start", "attempt"),
    sa.Index(None, "status", "created_at"),
    **TABLE_OPTIONS,
)

#: The audit chain's head: one row (id 1), the last sequence number and its
#: link, locked and advanced in the transaction of every chained row (migration 0012).
chain_head = sa.Table(
    "payhub_chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", ExactString(64), nullable=False),
    **TABLE_OPTIONS,
)

#: Chained tables and their fields, in the order of their canonical form
#: (docs/audit.md). Never reorder: it would break every existing link.
CHAINED: dict[str, tuple[str, ...]] = {
    "payhub_audit": ("payment_id", "from_status", "to_status", "cause", "source", "at"),
    "payhub_risk_audit": ("out_trade_no", "action", "rule", "actor", "detail", "at"),
    #: an entry's digest is SHA-256 over its lines (accounts and signed amounts)
    "payhub_ledger_entries": (
        "idempotency_key", "cause", "reference", "party", "plan", "available_on", "currency",
        "pending_minor", "digest", "created_at",
    ),
}

#: Written once, never updated or deleted: the application's database role gets
#: INSERT and SELECT on them only (payhub.store._roles, docs/security.md).
APPEND_ONLY: tuple[str, ...] = (*CHAINED, "payhub_ledger_lines")

# -- the ledger (migration 0010; docs/ledger.md) ------------------------------------

ledger_parties = sa.Table(
    "payhub_ledger_parties",
    metadata,
    #: "shop", a seller's name, "platform", or a channel account's name
    sa.Column("name", ExactString(64), primary_key=True),
    #: the settlement plan set through the API (overrides the configuration)
    sa.Column("plan", ExactString(32)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    **TABLE_OPTIONS,
)

ledger_accounts = sa.Table(
    "payhub_ledger_accounts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("party", ExactString(64), nullable=False),
    sa.Column("kind", ExactString(16), nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    #: the balance on the account's normal side (positive normally), changed in
    #: the same transaction as the lines, with the version
    sa.Column("balance_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("party", "kind", "currency"),
    **TABLE_OPTIONS,
)

ledger_entries = sa.Table(
    "payhub_ledger_entries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", ExactString(191), nullable=False, unique=True),
    #: payment / refund / duplicate / settlement / hold / withdrawal / adjustment ...
    sa.Column("cause", ExactString(24), nullable=False),
    sa.Column("reference", ExactString(191), nullable=False),
    #: the seller it is about (NULL: none)
    sa.Column("party", ExactString(64)),
    #: the settlement plan in force when posted
    sa.Column("plan", ExactString(32)),
    #: when the pending money it moved becomes due for settlement
    sa.Column("available_on", UTCDateTime),
    #: what it moved on ``party``'s pending account, in which currency (normal
    #: side, signed: a refund's is negative); a settlement batch adds these up
    sa.Column("currency", ExactString(3)),
    sa.Column("pending_minor", sa.BigInteger),
    #: SHA-256 of the content: a replay with other content is refused
    sa.Column("digest", ExactString(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    #: its place and link in the audit chain (migration 0010; payhub.store._chain)
    sa.Column("chain_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("chain_hash", ExactString(64), nullable=False),
    sa.Index(None, "available_on", "party"),
    sa.Index(None, "cause", "reference"),
    sa.Index(None, "party", "created_at"),
    **TABLE_OPTIONS,
)

ledger_lines = sa.Table(
    "payhub_ledger_lines",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("entry_id", BigId, sa.ForeignKey("payhub_ledger_entries.id"), nullable=False),
    sa.Column("account_id", BigId, sa.ForeignKey("payhub_ledger_accounts.id"), nullable=False),
    #: signed: a debit positive, a credit negative; an entry's lines sum to zero
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    #: the entry's time, here too so that a balance as of a time reads one index
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "entry_id"),
    sa.Index(None, "account_id", "created_at"),
    **TABLE_OPTIONS,
)

ledger_batches = sa.Table(
    "payhub_ledger_batches",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    #: party, currency, cycle and first member: the same batch whoever makes it
    sa.Column("key", ExactString(191), nullable=False, unique=True),
    sa.Column("party", ExactString(64), nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    sa.Column("available_on", UTCDateTime, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    #: the settlement entry (pending -> available)
    sa.Column("entry_id", BigId),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "party", "available_on"),
    **TABLE_OPTIONS,
)

ledger_batch_members = sa.Table(
    "payhub_ledger_batch_members",
    metadata,
    #: an entry lands in exactly one batch
    sa.Column("entry_id", BigId, primary_key=True, autoincrement=False),
    sa.Column("batch_id", BigId, nullable=False),
    sa.Index(None, "batch_id"),
    **TABLE_OPTIONS,
)

ledger_holds = sa.Table(
    "payhub_ledger_holds",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", ExactString(191), nullable=False, unique=True),
    sa.Column("party", ExactString(64), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    #: active / released / captured / expired
    sa.Column("status", ExactString(16), nullable=False),
    sa.Column("reason", ExactString(256)),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "expires_at"),
    sa.Index(None, "party"),
    **TABLE_OPTIONS,
)

ledger_withdrawals = sa.Table(
    "payhub_ledger_withdrawals",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", ExactString(191), nullable=False, unique=True),
    sa.Column("party", ExactString(64), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("fee_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    #: pending / paid / failed
    sa.Column("status", ExactString(16), nullable=False),
    #: the bank's or channel's reference once paid, or why it failed
    sa.Column("note", ExactString(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "party"),
    **TABLE_OPTIONS,
)

# -- reconciliation (migration 0011) ---------------------------------------------------

recon_runs = sa.Table(
    "payhub_recon_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("channel", ExactString(64), nullable=False),
    sa.Column("bill_date", sa.Date, nullable=False),
    #: running / done / refused (the bill did not add up) / failed
    sa.Column("status", ExactString(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    #: bill rows read so far; the rows of the batches committed
    sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
    #: class -> number of differences (and "matched")
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("error", ExactString(512)),
    sa.Index(None, "channel", "bill_date"),
    **TABLE_OPTIONS,
)

recon_items = sa.Table(
    "payhub_recon_items",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("channel", ExactString(64), nullable=False),
    sa.Column("bill_date", sa.Date, nullable=False),
    #: the difference's class: missing_in_store, amount_over, fee_mismatch, ...
    sa.Column("kind", ExactString(24), nullable=False),
    #: what makes it one difference of its day: "payment:<out_trade_no>", ...
    sa.Column("key", ExactString(191), nullable=False),
    sa.Column("out_trade_no", ExactString(64)),
    sa.Column("out_refund_no", ExactString(64)),
    sa.Column("channel_trade_id", ExactString(128)),
    sa.Column("bill_amount_minor", sa.BigInteger),
    sa.Column("store_amount_minor", sa.BigInteger),
    sa.Column("currency", ExactString(3)),
    sa.Column("bill_fee_minor", sa.BigInteger),
    sa.Column("expected_fee_minor", sa.BigInteger),
    sa.Column("detail", sa.JSON, nullable=False),
    #: open / repaired / ignored / adjusted / created / replaced / cleared
    sa.Column("status", ExactString(16), nullable=False),
    sa.Column("first_run_id", BigId, nullable=False),
    sa.Column("last_run_id", BigId, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", ExactString(128)),
    sa.Column("resolution", ExactString(512)),
    sa.UniqueConstraint("channel", "bill_date", "kind", "key"),
    sa.Index(None, "status", "channel", "bill_date"),
    **TABLE_OPTIONS,
)

recon_repairs = sa.Table(
    "payhub_recon_repairs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("item_id", BigId, sa.ForeignKey("payhub_recon_items.id"), nullable=False),
    #: sync (confirmed by a channel query, applied through the transition path) /
    #: ignore / adjust / create / replace
    sa.Column("action", ExactString(16), nullable=False),
    #: a person, or "auto"
    sa.Column("operator", ExactString(128), nullable=False),
    sa.Column("reason", ExactString(512), nullable=False),
    sa.Column("outcome", sa.JSON, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "item_id"),
    **TABLE_OPTIONS,
)

# -- splits (分账) and payouts (migration 0013) --------------------------------------------

splits = sa.Table(
    "payhub_splits",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    #: the caller's idempotency number: the channel's out_request_no / out_order_no
    sa.Column("out_split_no", ExactString(32), nullable=False, unique=True),
    sa.Column("out_trade_no", ExactString(64), nullable=False),
    sa.Column("channel", ExactString(64), nullable=False),
    sa.Column("channel_trade_id", ExactString(128), nullable=False),
    #: the ledger party the parts leave (the payment's seller; NULL: the shop)
    sa.Column("seller", ExactString(64)),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    sa.Column("finish", sa.Boolean, nullable=False, server_default=sa.false()),
    #: SHA-256 of the request's content: the same number with other content is refused
    sa.Column("digest", ExactString(64), nullable=False),
    #: processing / succeeded / failed / partial / refused
    sa.Column("status", ExactString(16), nullable=False),
    #: Alipay settle_no / WeChat order_id
    sa.Column("channel_split_id", ExactString(128)),
    #: JSON list: each line's party, kind, account, amount, description, status, reason
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("error", ExactString(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "updated_at"),
    sa.Index(None, "out_trade_no"),
    **TABLE_OPTIONS,
)

payouts = sa.Table(
    "payhub_payouts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    #: the caller's idempotency number: Alipay out_biz_no / WeChat out_bill_no
    sa.Column("out_payout_no", ExactString(32), nullable=False, unique=True),
    #: the ledger withdrawal it pays (one live payout per withdrawal: checked under
    #: the withdrawal's lock, as a refused payout's row stays)
    sa.Column("withdrawal_id", BigId, nullable=False),
    sa.Column("party", ExactString(64), nullable=False),
    sa.Column("channel", ExactString(64), nullable=False),
    #: the payee: ReceiverKind and account (never the real name)
    sa.Column("payee_kind", ExactString(16), nullable=False),
    sa.Column("payee_account", ExactString(64), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", ExactString(3), nullable=False),
    sa.Column("digest", ExactString(64), nullable=False),
    #: processing / succeeded / failed / refused
    sa.Column("status", ExactString(16), nullable=False),
    #: Alipay order_id / WeChat transfer_bill_no
    sa.Column("channel_transfer_id", ExactString(128)),
    #: WeChat: the user confirms the transfer (package_info for the confirm page)
    sa.Column("package_info", ExactString(512)),
    sa.Column("error", ExactString(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "updated_at"),
    sa.Index(None, "withdrawal_id"),
    **TABLE_OPTIONS,
)
