"""The payment store: payments with every attempt, inbox, refunds, outbox, audit.

:class:`Store` is the one public class. Its work is split by job, one module
each: ``_payments`` (new payments, attempts, the transition path),
``_refunds``, ``_anomalies``, ``_outbox`` (events), ``_queries`` (reading),
over ``_base`` (engine, settings, the transaction runner). What a fact does
to a payment is decided by :mod:`payhub.lifecycle`; ``_apply`` carries it out.
"""

from __future__ import annotations

from payhub.store._anomalies import AnomaliesJob
from payhub.store._backlog import BacklogJob
from payhub.store._custody import CustodyJob
from payhub.store._outbox import DEFAULT_EVENT_LEASE, OutboxJob
from payhub.store._payments import PaymentsJob
from payhub.store._queries import QueriesJob
from payhub.store._refunds import RefundsJob
from payhub.store._reviews import ReviewsJob
from payhub.store._splits import SplitsJob

__all__ = ["DEFAULT_EVENT_LEASE", "Store"]


class Store(
    PaymentsJob,
    RefundsJob,
    AnomaliesJob,
    OutboxJob,
    QueriesJob,
    ReviewsJob,
    BacklogJob,
    CustodyJob,
    SplitsJob,
):
    """The payment store on one database.

    >>> store = Store("sqlite:///payhub.db")  # doctest: +SKIP
    >>> store.upgrade()  # create or migrate the tables  # doctest: +SKIP
    >>> hub = PayHub(channels=[...], store=store)  # doctest: +SKIP

    ``url`` is an SQLAlchemy URL: ``sqlite:///path.db``,
    ``postgresql+psycopg://user:pw@host/db``, ``mysql+pymysql://user:pw@host/db``.
    ``engine_options`` go to :func:`sqlalchemy.create_engine` (pool size…).
    ``statement_timeout``, ``lock_timeout`` and ``connect_timeout`` (seconds;
    5, 3 and 10 by default) bound how long PostgreSQL and MySQL/MariaDB
    operations may wait; each ends in a retryable :class:`StoreError`
    (``docs/store.md``, "Timeouts").
    """
