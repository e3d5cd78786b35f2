"""The reconciliation run: stream a channel's bill of a day, match it against
the store in batches, record the differences, repair what a query proves.

A run is stored (``payhub_recon_runs``) with its counts per class. Each batch
of rows commits its differences with the run's progress in one transaction;
a crash leaves the run ``running`` and the next run of that day resumes it
(same run id; rows already committed are read again, and since a difference
is unique by (channel, day, class, key) nothing is recorded twice). Repairs
happen after the whole bill was read and checked against its own totals, and
only on differences still open: a re-run repairs nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final

from payhub.bill_match import (
    Difference,
    DiffKind,
    Repair,
    StoredPayment,
    StoredRefund,
    classify_payment,
    classify_refund,
    day_window,
    duplicate_row,
    missing_at_channel,
    payment_key,
    refund_key,
)
from payhub.channels._bills import BillStream
from payhub.channels._fundflow import FundFlowLine, FundFlowStream
from payhub.errors import (
    ConfigurationError,
    InvalidRequestError,
    PayhubError,
    ProtocolError,
)
from payhub.fees import FeeSchedule
from payhub.models import BillRecordKind
from payhub.money import Money
from payhub.recon import _db
from payhub.recon._adjust import adjustment_draft
from payhub.tz import SHANGHAI

if TYPE_CHECKING:
    from payhub.hub import PayHub
    from payhub.ledger import Ledger
    from payhub.store import Store

__all__ = ["ReconConfig", "Reconciler", "RunResult"]

logger = logging.getLogger("payhub.recon")

MATCHED: Final = "matched"
#: stored payments of the day the bill does not have yet, within the SLA
EXPECTED: Final = "expected"
AUTO: Final = "auto"
_PAID: Final = frozenset({"paid", "partially_refunded", "refunded"})
#: a batch without differences commits the run's progress only this often
_PROGRESS_EVERY: Final = 10
_CONFIG_KEYS: Final = frozenset(
    {
        "sla_days",
        "fees",
        "cutoffs",
        "boundary_slack_seconds",
        "auto_repair",
        "batch_size",
        "check_ledger",
    }
)


#: A bill row as a batch keeps it: (is_payment, out_trade_no, out_refund_no,
#: amount_minor, currency, fee_minor, channel_trade_id). A plain tuple of
#: strings and numbers on purpose: the garbage collector stops tracking such a
#: tuple the first time it sees it, so the thousands a batch holds are not
#: walked again and again (a BillLine, holding its enum kind and field list,
#: would be, a third of a big run's time).
_Row = tuple[bool, str, str | None, int, str, int | None, str]


@dataclass(frozen=True)
class ReconConfig:
    """How reconciliation judges a day.

    ``sla_days``: a stored payment or refund absent from the bill becomes
    ``missing_at_channel`` only this many days after the bill's day ended.
    ``cutoffs``: a channel's day cut-off in ``zone`` (midnight by default,
    Alipay's and WeChat Pay's). ``boundary_slack``: a payment this close to a
    cut-off may sit in the neighbouring day's bill, so its absence from this
    one is no difference. ``fees``: the fee schedule (by channel account) the
    bills' fees are held to; None compares no fees. ``auto_repair``: confirm
    and apply ``missing_in_store`` payments and refunds the store has pending
    by a channel query after each run. ``batch_size``: rows per look-up and
    per transaction.
    """

    sla_days: int = 2
    cutoffs: Mapping[str, time] = field(default_factory=dict)
    zone: tzinfo = SHANGHAI
    boundary_slack: timedelta = timedelta(minutes=5)
    fees: FeeSchedule | None = None
    auto_repair: bool = True
    batch_size: int = 5000
    #: match each paid payment against its ledger entry (when the store has a ledger)
    check_ledger: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.sla_days, bool) or not isinstance(self.sla_days, int):
            raise ConfigurationError("recon: sla_days must be a whole number of days")
        if self.sla_days < 0:
            raise ConfigurationError("recon: sla_days must not be negative")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 10_000:
            raise ConfigurationError("recon: batch_size must be between 1 and 10000")
        if self.fees is not None and not isinstance(self.fees, FeeSchedule):
            raise ConfigurationError("recon: fees must be a payhub.fees.FeeSchedule")
        for name, cutoff in self.cutoffs.items():
            if not isinstance(cutoff, time) or cutoff.tzinfo is not None:
                raise ConfigurationError(f"recon: cutoffs[{name!r}] must be a naive time")

    @classmethod
    def from_config(cls, config: object) -> ReconConfig:
        """Read the hub configuration's ``"reconcile"`` section: ``sla_days``,
        ``fees`` (a :meth:`FeeSchedule.from_config` mapping), ``cutoffs``
        (``{"channel": "HH:MM"}``), ``boundary_slack_seconds``, ``auto_repair``,
        ``batch_size``."""
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ConfigurationError("reconcile: expected an object")
        unknown = set(config) - _CONFIG_KEYS
        if unknown:
            raise ConfigurationError(f"reconcile: unknown keys {sorted(unknown)}")
        cutoffs: dict[str, time] = {}
        raw_cutoffs = config.get("cutoffs", {})
        if not isinstance(raw_cutoffs, Mapping):
            raise ConfigurationError("reconcile.cutoffs: expected {channel: 'HH:MM'}")
        for name, text in raw_cutoffs.items():
            try:
                cutoffs[str(name)] = time.fromisoformat(str(text))
            except ValueError:
                raise ConfigurationError(f"reconcile.cutoffs.{name}: not a time HH:MM") from None
        slack = config.get("boundary_slack_seconds", 300)
        if isinstance(slack, bool) or not isinstance(slack, int) or slack < 0:
            raise ConfigurationError("reconcile.boundary_slack_seconds: a whole number >= 0")
        auto = config.get("auto_repair", True)
        if not isinstance(auto, bool):
            raise ConfigurationError("reconcile.auto_repair: true or false")
        fees = config.get("fees")
        return cls(
            sla_days=config.get("sla_days", 2),
            cutoffs=cutoffs,
            boundary_slack=timedelta(seconds=slack),
            fees=None if fees is None else FeeSchedule.from_config(fees, path="reconcile.fees"),
            auto_repair=auto,
            batch_size=config.get("batch_size", 5000),
            check_ledger=bool(config.get("check_ledger", True)),
        )

    def window(self, channel: str, bill_date: date) -> tuple[datetime, datetime]:
        return day_window(bill_date, self.cutoffs.get(channel, time(0)), self.zone)

    def expected_fee(self, channel: str, amount_minor: int, currency: str) -> int | None:
        if self.fees is None or (channel not in self.fees and self.fees.default is None):
            return None
        return self.fees.compute(channel, Money(amount_minor, currency)).minor


@dataclass
class RunResult:
    """What one run found: counts per class (and ``matched``, ``expected``),
    the differences still open for the day, and what was repaired."""

    run_id: int
    channel: str
    bill_date: date
    status: str
    rows: int
    counts: dict[str, int]
    open: int
    repaired: list[int] = field(default_factory=list)
    resumed: bool = False
    error: str | None = None

    @property
    def clean(self) -> bool:
        """Nothing left to look at: no open difference, the bill accepted."""
        return self.status == "done" and self.open == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "channel": self.channel,
            "bill_date": self.bill_date.isoformat(),
            "status": self.status,
            "rows": self.rows,
            "counts": dict(self.counts),
            "open": self.open,
            "repaired": list(self.repaired),
            "resumed": self.resumed,
            "error": self.error,
        }


class _Matcher:
    """The state of one pass over a bill: what was seen, the counts."""

    def __init__(
        self, channel: str, config: ReconConfig, ledger_prices: bool = False
    ) -> None:
        self.channel = channel
        self.config = config
        #: the ledger books this channel's fees (else fees compare with ``config.fees``)
        self.ledger_prices = ledger_prices
        self.counts: dict[str, int] = {MATCHED: 0}
        self.seen_payments: set[int] = set()
        self.seen_refunds: set[int] = set()
        #: rows whose key matched nothing stored, to tell their repeats
        self.seen_unknown: dict[str, int] = {}
        self.rows = 0
        self.batches = 0
        #: with a fund-flow bill: the fees it shows that differ from the books',
        #: by out_trade_no (every other payment's fee agrees); None: the trade
        #: bill's fee column is compared instead
        self.flow_fees: dict[str, int] | None = None

    def batch(
        self,
        rows: list[_Row],
        stored_payments: Mapping[str, tuple[Any, ...]],
        stored_refunds: Mapping[str, StoredRefund],
        ledger: Mapping[str, int] | None = None,
    ) -> list[Difference]:
        """Classify a batch of rows (:func:`_row` s). ``ledger``: the channel fee the
        ledger booked for each payment it posted (None: the ledger is not checked)."""
        found: list[Difference] = []
        channel = self.channel
        counts = self.counts
        seen_payments, seen_refunds = self.seen_payments, self.seen_refunds
        ledger_fees = ledger if ledger is not None and self.ledger_prices else None
        schedule = self.config.fees is not None
        flow_fees = self.flow_fees

        def expected_fee(out_trade_no: str, amount: int, currency: str) -> int | None:
            if ledger_fees is not None and out_trade_no in ledger_fees:
                return ledger_fees[out_trade_no]
            return self.config.expected_fee(channel, amount, currency) if schedule else None

        for is_payment, out_trade_no, out_refund_no, amount, currency, line_fee, trade_id in rows:
            self.rows += 1
            if is_payment:
                stored = stored_payments.get(out_trade_no)
                fee = line_fee if flow_fees is None else flow_fees.get(out_trade_no)
                if stored is not None and stored[0] not in seen_payments:
                    # the common case, inline: a paid payment billed once, as stored
                    # (by position: id, out_trade_no, amount, currency, status, channel)
                    seen_payments.add(stored[0])
                    if (
                        stored[2] == amount
                        and stored[4] in _PAID
                        and stored[5] == channel
                        and stored[3] == currency
                        and (ledger is None or out_trade_no in ledger)
                        and (
                            fee is None
                            or (ledger_fees is None and not schedule)
                            or fee
                            == expected_fee(out_trade_no, amount, currency)
                        )
                    ):
                        counts[MATCHED] += 1
                        continue
                    seen_payments.discard(stored[0])
                key = payment_key(out_trade_no)
                # a plain tuple until here: named only on this slower path
                record = None if stored is None else StoredPayment(*stored)
                ident = None if record is None else record.id
                seen = seen_payments
                expected = (
                    None
                    if record is None or record.status not in _PAID
                    else expected_fee(out_trade_no, amount, currency)
                )
                in_ledger = None if ledger is None else out_trade_no in ledger
            else:
                number = out_refund_no or f"{out_trade_no}:{-amount}"
                key = refund_key(number)
                refund = stored_refunds.get(number)
                ident = None if refund is None else refund.id
                seen = seen_refunds
            if self._repeated(key, ident, seen):
                times = self.seen_unknown.get(key, 2)
                found.append(
                    duplicate_row(
                        key,
                        out_trade_no=out_trade_no,
                        out_refund_no=out_refund_no,
                        amount_minor=amount,
                        currency=currency,
                        seen=times,
                    )
                )
                counts[DiffKind.DUPLICATE_ROW] = counts.get(DiffKind.DUPLICATE_ROW, 0) + 1
                continue
            if is_payment:
                diffs = classify_payment(
                    channel=channel,
                    out_trade_no=out_trade_no,
                    channel_trade_id=trade_id,
                    amount_minor=amount,
                    currency=currency,
                    fee_minor=fee,
                    stored=record,
                    expected_fee_minor=expected,
                    in_ledger=in_ledger,
                )
            else:
                diffs = classify_refund(
                    channel=channel,
                    out_trade_no=out_trade_no,
                    out_refund_no=number,
                    channel_trade_id=trade_id,
                    amount_minor=amount,
                    currency=currency,
                    stored=refund,
                )
            if not diffs:
                counts[MATCHED] += 1
                continue
            for diff in diffs:
                counts[diff.kind] = counts.get(diff.kind, 0) + 1
            found.extend(diffs)
        return found

    def _repeated(self, key: str, ident: int | None, seen: set[int]) -> bool:
        if ident is None:
            if key in self.seen_unknown:
                self.seen_unknown[key] += 1
                return True
            self.seen_unknown[key] = 1
            return False
        if ident in seen:
            self.seen_unknown[key] = self.seen_unknown.get(key, 1) + 1
            return True
        seen.add(ident)
        return False


class Reconciler:
    """Reconciles channels' bills with the hub's store.

    >>> reconciler = Reconciler(hub, ReconConfig(sla_days=2))  # doctest: +SKIP
    >>> result = reconciler.run("alipay", date(2024, 3, 1))  # doctest: +SKIP
    >>> result.counts, result.open  # doctest: +SKIP
    """

    def __init__(
        self,
        hub: PayHub | None,
        config: ReconConfig | None = None,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``hub``: the hub whose channels give the bills and answer queries, and
        whose store is reconciled; without one (``store`` only) the queue can be
        read and resolved, but nothing run or synced. ``clock``: what "now" is
        when judging the SLA (the store's clock by default)."""
        store = hub.store if hub is not None else store
        if store is None:
            raise ConfigurationError("reconciliation needs a hub with a store")
        self._hub = hub
        self.store: Store = store
        self.config = config or ReconConfig()
        self._clock = clock or store.now
        try:
            self._ledger: Ledger | None = store.ledger
        except ConfigurationError:  # a store built with ledger=False
            self._ledger = None

    @property
    def hub(self) -> PayHub:
        if self._hub is None:
            raise ConfigurationError(
                "this needs the hub's channels: give a hub configuration (--config)"
            )
        return self._hub

    # -- runs -------------------------------------------------------------------------

    def run(
        self,
        channel: str,
        bill_date: date,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Download ``channel``'s bill of ``bill_date`` (and its fund-flow bill,
        where the channel has one: it then decides the fees) and reconcile it."""
        _check_date(bill_date)
        self.hub.channel(channel)  # an unknown channel fails before anything is stored
        with self.hub.stream_bill(channel, bill_date) as bill:
            fundflow = self.hub.stream_fundflow_bill(channel, bill_date)
            try:
                return self.run_bill(bill, fundflow=fundflow, progress=progress)
            finally:
                if fundflow is not None:
                    fundflow.close()

    def run_bill(
        self,
        bill: BillStream,
        *,
        fundflow: FundFlowStream | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Reconcile a bill already at hand (a :class:`BillStream`).

        ``fundflow``: the channel's fund-flow bill of the same day, where it has
        one: payments' fees are then decided by what it shows came in (the
        payment less the fee kept), not by the trade bill's fee column."""
        channel, bill_date = bill.channel, bill.bill_date
        _check_date(bill_date)
        store = self.store
        started = store.run(lambda conn: _db.start_run(conn, channel, bill_date, store.now()))
        run_id = int(started["id"])
        ledger = self._ledger if self.config.check_ledger else None
        prices = ledger is not None and (
            channel in ledger.config.channel_fees or ledger.config.channel_fees.default is not None
        )
        matcher = _Matcher(channel, self.config, ledger_prices=prices)
        try:
            if fundflow is not None:
                matcher.flow_fees = self._flow_fees(fundflow, matcher)
            self._stream(bill, matcher, run_id, progress)
        except ProtocolError as exc:
            # The bill did not add up (or broke off): what it showed is void.
            why, now = exc.message, store.now()
            store.run(lambda conn: _refuse(conn, run_id, matcher, why, now))
            return self._result(run_id, resumed=bool(started.get("resumed")))
        self._missing_at_channel(matcher, run_id, channel, bill_date)
        now = store.now()
        counts = {str(k): v for k, v in matcher.counts.items()}

        def finish(conn: Any) -> None:
            _db.clear_unseen(conn, channel, bill_date, run_id, now)
            _db.finish_run(
                conn, run_id, status="done", counts=counts, rows_read=matcher.rows, now=now
            )

        store.run(finish)
        # Repairs ask the channels: only with a hub (a store-only reconciler just records).
        auto = self.config.auto_repair and self._hub is not None
        repaired = self.auto_repair(channel, bill_date) if auto else []
        result = self._result(run_id, resumed=bool(started.get("resumed")))
        result.repaired = repaired
        return result

    def _stream(
        self,
        bill: BillStream,
        matcher: _Matcher,
        run_id: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        size = self.config.batch_size
        store = self.store
        # One reading connection for the whole bill, its snapshot released after
        # each batch; the differences are written in their own short transactions.
        with store.engine.connect() as opened:
            reader = opened.execution_options(payhub_readonly=True)
            batch: list[_Row] = []
            remember = batch.append
            payment = BillRecordKind.PAYMENT
            for line in bill.lines():
                # by position: kind, channel_trade_id, out_trade_no, out_refund_no,
                # amount_minor, currency, fee_minor (see _Row)
                remember(
                    (line[0] is payment, line[2], line[3], line[4], line[5], line[6], line[1])
                )
                if len(batch) >= size:
                    self._batch(reader, batch, matcher, run_id, bill)
                    batch = []
                    remember = batch.append
                    if progress is not None:
                        progress(matcher.rows)
            if batch:
                self._batch(reader, batch, matcher, run_id, bill)
                if progress is not None:
                    progress(matcher.rows)

    def _flow_fees(self, fundflow: FundFlowStream, matcher: _Matcher) -> dict[str, int]:
        """Read the fund-flow bill before the trade bill: the fee of each paid
        payment it shows coming in is the stored amount less what came in;
        kept only where it differs from the books (the ledger's fee line, else
        the fee schedule's), so memory grows with the differences, not the day.
        A payment the store does not have as paid here is left to the trade
        bill, which classifies it."""
        channel, config = matcher.channel, self.config
        schedule = config.fees is not None
        check_ledger = self._ledger is not None and config.check_ledger and matcher.ledger_prices
        found: dict[str, int] = {}
        if not schedule and not check_ledger:
            return found  # nothing prices this channel: no fee is compared
        payment = BillRecordKind.PAYMENT
        size = config.batch_size

        def judge(lines: list[FundFlowLine]) -> None:
            keys = list(dict.fromkeys(line.reference for line in lines))

            def look_up(conn: Any) -> tuple[dict[str, tuple[Any, ...]], dict[str, int] | None]:
                return (
                    _db.lookup_payments(conn, keys),
                    _db.lookup_ledger(conn, keys) if check_ledger else None,
                )

            stored_payments, ledger = self.store.run(look_up, readonly=True)
            for line in lines:
                stored = stored_payments.get(line.reference)
                if (
                    stored is None
                    or stored[4] not in _PAID
                    or stored[5] != channel
                    or stored[3] != line.currency
                ):
                    continue
                fee = stored[2] - line.amount_minor
                if ledger is not None and line.reference in ledger:
                    expected: int | None = ledger[line.reference]
                elif schedule:
                    expected = config.expected_fee(channel, stored[2], stored[3])
                else:
                    expected = None
                if expected is not None and fee != expected:
                    found[line.reference] = fee

        batch: list[FundFlowLine] = []
        for line in fundflow.lines():
            if line.kind is not payment or not line.reference:
                continue
            batch.append(line)
            if len(batch) >= size:
                judge(batch)
                batch = []
        if batch:
            judge(batch)
        return found

    def _batch(
        self,
        reader: Any,
        rows: list[_Row],
        matcher: _Matcher,
        run_id: int,
        bill: BillStream,
    ) -> None:
        # in bill order (the index is walked in order), without repeats
        payment_keys = list(dict.fromkeys(row[1] for row in rows if row[0]))
        refund_keys = list(dict.fromkeys(row[2] for row in rows if not row[0] and row[2]))

        check_ledger = self._ledger is not None and self.config.check_ledger

        def look_up() -> tuple[
            dict[str, tuple[Any, ...]], dict[str, StoredRefund], dict[str, int] | None
        ]:
            try:
                return (
                    _db.lookup_payments(reader, payment_keys),
                    _db.lookup_refunds(reader, refund_keys),
                    _db.lookup_ledger(reader, payment_keys) if check_ledger else None,
                )
            finally:
                reader.rollback()

        stored_payments, stored_refunds, ledger = self.store.guard(look_up)
        # Classified outside the write: a retried transaction writes the same rows.
        found = matcher.batch(rows, stored_payments, stored_refunds, ledger)
        matcher.batches += 1
        if not found and matcher.batches % _PROGRESS_EVERY:
            return  # nothing to record: the run's progress is written every few batches
        read, now = matcher.rows, self.store.now()

        def write(conn: Any) -> None:
            _db.record_differences(conn, bill.channel, bill.bill_date, run_id, found, now=now)
            _db.progress(conn, run_id, read)

        self.store.run(write)

    def _missing_at_channel(
        self, matcher: _Matcher, run_id: int, channel: str, bill_date: date
    ) -> None:
        config = self.config
        start, end = config.window(channel, bill_date)
        slack = config.boundary_slack
        now = self._clock()

        # Rows this close to a cut-off may sit in the neighbouring day's bill:
        # only what lies inside the slack is looked for.
        inner_start, inner_end = start + slack, end - slack

        def judge(key: str, out_trade_no: str, out_refund_no: str | None, amount: int,
                  currency: str) -> Difference | None:
            return missing_at_channel(
                key=key,
                out_trade_no=out_trade_no,
                out_refund_no=out_refund_no,
                amount_minor=amount,
                currency=currency,
                bill_date=bill_date,
                now=now,
                sla_days=config.sla_days,
                window_end=end,
            )

        def scan(conn: Any) -> tuple[list[Difference], int]:
            found: list[Difference] = []
            waiting = 0
            seen = matcher.seen_payments
            unseen = [
                ident
                for ident in _db.day_payment_ids(conn, channel, inner_start, inner_end)
                if ident not in seen
            ]
            for at in range(0, len(unseen), config.batch_size):
                chunk = unseen[at : at + config.batch_size]
                for _, out_trade_no, amount, currency in _db.payments_by_id(conn, chunk):
                    diff = judge(payment_key(out_trade_no), out_trade_no, None, amount, currency)
                    if diff is None:
                        waiting += 1
                    else:
                        found.append(diff)
            for ident, out_refund_no, out_trade_no, amount, currency in _db.day_refunds(
                conn, channel, inner_start, inner_end
            ):
                if ident in matcher.seen_refunds:
                    continue
                diff = judge(refund_key(out_refund_no), out_trade_no, out_refund_no, -amount,
                             currency)
                if diff is None:
                    waiting += 1
                else:
                    found.append(diff)
            _db.record_differences(conn, channel, bill_date, run_id, found, now=now)
            return found, waiting

        found, expected = self.store.run(scan)
        if found:
            matcher.counts[DiffKind.MISSING_AT_CHANNEL] = len(found)
        if expected:
            matcher.counts[EXPECTED] = expected

    def _result(self, run_id: int, *, resumed: bool) -> RunResult:
        def read(conn: Any) -> tuple[_db.RunRecord, int]:
            record = _db.run(conn, run_id)
            assert record is not None
            return record, _db.open_count(conn, record["channel"], record["bill_date"])

        record, still_open = self.store.run(read, readonly=True)
        return RunResult(
            run_id=run_id,
            channel=record["channel"],
            bill_date=record["bill_date"],
            status=record["status"],
            rows=int(record["rows_read"]),
            counts=dict(record["counts"] or {}),
            open=still_open,
            resumed=resumed,
            error=record["error"],
        )

    # -- repairs ----------------------------------------------------------------------

    def auto_repair(self, channel: str, bill_date: date) -> list[int]:
        """Confirm every open ``missing_in_store`` difference of the day that a
        query can prove, and apply it through the normal transition path."""
        todo = self.store.run(
            lambda conn: list(
                _db.items(
                    conn,
                    channel=channel,
                    bill_date=bill_date,
                    kinds=[DiffKind.MISSING_IN_STORE.value],
                )
            ),
            readonly=True,
        )
        done: list[int] = []
        for record in todo:
            if Repair.SYNC.value not in record["detail"].get("repairs", ()):
                continue
            if self._sync(record, operator=AUTO, reason="confirmed by a channel query"):
                done.append(int(record["id"]))
        return done

    def _sync(self, record: Mapping[str, Any], *, operator: str, reason: str) -> bool:
        """Ask the channel and apply its answer (hub.sync_payment / sync_refund);
        close the difference only if the store now agrees with the bill."""
        try:
            if record["out_refund_no"]:
                refund = self.hub.sync_refund(record["out_refund_no"])
                agrees = refund.status.value == "succeeded" and (
                    -refund.amount.minor == record["bill_amount_minor"]
                )
                outcome: dict[str, Any] = {"refund_status": refund.status.value}
            else:
                payment = self.hub.sync_payment(record["out_trade_no"])
                agrees = payment is not None and payment.status.value in _PAID and (
                    payment.amount.minor == record["bill_amount_minor"]
                )
                outcome = {"payment_status": None if payment is None else payment.status.value}
        except PayhubError as exc:
            logger.info("recon: sync of difference %s failed: %s", record["id"], exc.message)
            return False
        if not agrees:
            return False
        now = self.store.now()
        return bool(
            self.store.run(
                lambda conn: _db.resolve(
                    conn,
                    int(record["id"]),
                    status="repaired",
                    action=Repair.SYNC.value,
                    operator=operator,
                    reason=reason,
                    outcome=outcome,
                    now=now,
                )
            )
        )

    def resolve(
        self,
        item_id: int,
        action: Repair | str,
        *,
        operator: str,
        reason: str,
    ) -> _db.ItemRecord:
        """A person's decision on one difference, audited.

        ``sync``: ask the channel and apply its answer through the transition
        path (closes the difference only if the store then agrees with the
        bill); ``ignore``: accepted as is; ``adjust``: a ledger adjustment
        entry makes the books agree with the bill (:mod:`payhub.recon._adjust`);
        ``create`` / ``replace``: the person created or replaced the record
        elsewhere (payhub never invents a payment).
        """
        try:
            action = Repair(action)
        except ValueError:
            raise InvalidRequestError(
                f"unknown repair {str(action)[:16]!r}: one of {', '.join(Repair)}"
            ) from None
        operator, reason = _text(operator, "operator", 128), _text(reason, "reason", 512)
        if operator == AUTO:
            raise InvalidRequestError('operator "auto" is reserved for automatic repairs')
        record = self.item(item_id)
        if record["status"] != _db.OPEN:
            raise InvalidRequestError(f"difference {item_id} is already {record['status']}")
        allowed = record["detail"].get("repairs", [])
        if action.value not in allowed:
            raise InvalidRequestError(
                f"difference {item_id} ({record['kind']}) takes {', '.join(allowed)}, "
                f"not {action.value}"
            )
        if action is Repair.SYNC:
            if not self._sync(record, operator=operator, reason=reason):
                raise InvalidRequestError(
                    f"difference {item_id}: the channel's answer does not confirm the bill; "
                    "it stays open"
                )
            return self.item(item_id)
        status = {
            Repair.IGNORE: "ignored",
            Repair.ADJUST: "adjusted",
            Repair.CREATE: "created",
            Repair.REPLACE: "replaced",
        }[action]
        outcome: dict[str, Any] = {
            "bill_amount_minor": record["bill_amount_minor"],
            "store_amount_minor": record["store_amount_minor"],
            "bill_fee_minor": record["bill_fee_minor"],
            "expected_fee_minor": record["expected_fee_minor"],
        }
        if action is Repair.ADJUST:
            if self._ledger is None:
                raise ConfigurationError("adjust posts a ledger entry: this store has no ledger")
            posted = self._ledger.post(adjustment_draft(record, self._ledger, self.store))
            outcome["ledger_entry_id"] = posted.entry_id
        now = self.store.now()
        if not self.store.run(
            lambda conn: _db.resolve(
                conn,
                item_id,
                status=status,
                action=action.value,
                operator=operator,
                reason=reason,
                outcome=outcome,
                now=now,
            )
        ):
            raise InvalidRequestError(f"difference {item_id} was resolved meanwhile")
        return self.item(item_id)

    # -- the queue ----------------------------------------------------------------------

    def item(self, item_id: int) -> _db.ItemRecord:
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise InvalidRequestError("a difference id is a whole number")
        record = self.store.run(lambda conn: _db.item(conn, item_id), readonly=True)
        if record is None:
            raise InvalidRequestError(f"no difference {item_id}")
        return record

    def repairs(self, item_id: int) -> list[dict[str, Any]]:
        return self.store.run(lambda conn: _db.repairs(conn, item_id), readonly=True)

    def items(
        self,
        *,
        channel: str | None = None,
        bill_date: date | None = None,
        status: str | None = _db.OPEN,
        limit: int | None = None,
    ) -> list[_db.ItemRecord]:
        return self.store.run(
            lambda conn: list(
                _db.items(conn, channel=channel, bill_date=bill_date, status=status, limit=limit)
            ),
            readonly=True,
        )

    def runs(
        self, channel: str | None = None, bill_date: date | None = None, limit: int = 50
    ) -> list[_db.RunRecord]:
        return self.store.run(lambda conn: _db.runs(conn, channel, bill_date, limit), readonly=True)

    def open_count(self, channel: str | None = None, bill_date: date | None = None) -> int:
        return self.store.run(lambda conn: _db.open_count(conn, channel, bill_date), readonly=True)


def _refuse(conn: Any, run_id: int, matcher: _Matcher, why: str, now: datetime) -> None:
    _db.drop_run_items(conn, run_id)
    _db.finish_run(
        conn,
        run_id,
        status="refused",
        counts={},
        rows_read=matcher.rows,
        now=now,
        error=why,
    )


def _check_date(bill_date: object) -> None:
    if not isinstance(bill_date, date) or isinstance(bill_date, datetime):
        raise InvalidRequestError("bill_date must be a date")


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{what} is required")
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidRequestError(f"{what} must be one line of at most {limit} characters")
    return value.strip()
