"""Least privilege on a real PostgreSQL server: the migrator owns the tables,
the application's role takes a payment and its notification through the
store, and is refused any UPDATE, DELETE or TRUNCATE of audit rows."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from storekit import ToyBank, ToyChannel
from typer.testing import CliRunner

from payhub import Money, PayHub, PaymentRequest, PayMethod, cli
from payhub.store import Store, grant_statements
from payhub.store._schema import APPEND_ONLY

pytestmark = pytest.mark.postgres


@pytest.fixture
def roles() -> Iterator[tuple[str, str]]:
    """(migrator URL, application URL) in a schema of their own; roles dropped after."""
    server = os.environ.get("PAYHUB_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("PAYHUB_TEST_POSTGRES_URL is not set: no postgres server to test against")
    tag = uuid.uuid4().hex[:8]
    migrator, app, schema = f"payhub_mig_{tag}", f"payhub_app_{tag}", f"payhub_lp_{tag}"
    password = uuid.uuid4().hex
    admin = sa.create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {migrator} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"CREATE ROLE {app} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema} AUTHORIZATION {migrator}")

    def url(user: str) -> str:
        return (
            make_url(server)
            .set(username=user, password=password)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )

    try:
        yield url(migrator), url(app)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            for role in (app, migrator):
                conn.exec_driver_sql(f"DROP OWNED BY {role}")
                conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_the_application_role_cannot_rewrite_the_audit(roles: tuple[str, str]) -> None:
    migrator_url, app_url = roles
    migrator, app = make_url(migrator_url).username, make_url(app_url).username
    schema = make_url(migrator_url).query["options"].split("=")[1]  # type: ignore[union-attr]
    assert migrator is not None
    assert app is not None
    with Store(migrator_url) as store:
        store.upgrade()
        # The grants as `payhub db roles` prints them, run as the migrator.
        result = CliRunner().invoke(
            cli.app, ["db", "roles", "--app", app, "--migrator", migrator, "--schema", schema]
        )
        assert result.exit_code == 0, result.output
        with store.engine.begin() as conn:
            for statement in result.output.strip().split(";\n"):
                conn.exec_driver_sql(statement.rstrip(";"))
    assert result.output.count("GRANT") == len(grant_statements(app, migrator=migrator)) - 2

    bank = ToyBank()
    with PayHub(
        channels=[ToyChannel("toy-a")], store=Store(app_url), http_client=bank.client()
    ) as hub:
        hub._owns_store = True
        hub.pay(PaymentRequest(out_trade_no="LP-1", amount=Money(1000), subject="card",
                               method=PayMethod.QR, channel="toy-a"))
        assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "LP-1")).ack.ok
        hub._store.record_risk(
            "LP-2", {"action": "block", "rule": "r", "reason": "x", "hits": []}, hold=False
        )
        record = hub._store.payment("LP-1")
        assert record is not None
        assert record.status.value == "paid"
        report = hub._store.verify_chain()
        assert report.ok
        assert report.rows == 4  # pay, paid, the ledger entry, the risk block

    forbidden = [
        f"{verb} {table}" for table in APPEND_ONLY
        for verb in ("UPDATE", "DELETE FROM", "TRUNCATE")
        if not (verb == "UPDATE" and table == "payhub_ledger_lines")
    ] + ["UPDATE payhub_ledger_lines SET amount_minor = 0"]
    with Store(app_url) as store:
        for statement in forbidden:
            update = statement.startswith("UPDATE") and " SET " not in statement
            sql = statement + (" SET chain_hash = chain_hash" if update else "")
            with pytest.raises(ProgrammingError) as caught, store.engine.begin() as conn:
                conn.exec_driver_sql(sql)
            assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege), sql
        for ddl in ("DROP TABLE payhub_audit", "ALTER TABLE payhub_audit DROP COLUMN chain_hash",
                    "CREATE TABLE payhub_mine (id int)"):
            with pytest.raises(ProgrammingError) as caught, store.engine.begin() as conn:
                conn.exec_driver_sql(ddl)
            assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege), ddl
        assert store.verify_chain().rows == 4


def test_splits_and_payouts_need_no_delete(roles: tuple[str, str]) -> None:
    """Reserving, refusing, re-reserving and settling splits and payouts run as the
    application's role, which may delete nothing (a refusal marks, never deletes)."""
    from payhub.splits_models import (
        ReceiverKind,
        SplitLineResult,
        SplitResult,
        SplitStatus,
        TransferRequest,
        TransferResult,
        TransferStatus,
    )
    from payhub.store import PayoutState, SplitLineRecord, SplitState
    from payhub.store._splits import digest_of

    migrator_url, app_url = roles
    migrator, app = make_url(migrator_url).username, make_url(app_url).username
    assert migrator is not None
    assert app is not None
    with Store(migrator_url) as store:
        store.upgrade()
        with store.engine.begin() as conn:
            for statement in grant_statements(app, migrator=migrator, schema=make_url(
                migrator_url
            ).query["options"].split("=")[1]):  # type: ignore[union-attr]
                conn.exec_driver_sql(statement)
    bank = ToyBank()
    ledger = {"plans": {"w": "instant"}}
    with PayHub(
        channels=[ToyChannel("toy-a")], store=Store(app_url, ledger=ledger),
        http_client=bank.client(),
    ) as hub:
        hub._owns_store = True
        store = hub._store
        assert store is not None
        hub.pay(PaymentRequest(out_trade_no="LPS-1", amount=Money(1000), subject="card",
                               method=PayMethod.QR, channel="toy-a", seller="w"))
        assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "LPS-1")).ack.ok
        line = SplitLineRecord(party="bob", kind="user_id", account="2088000000000002",
                               amount=Money(300), description="d")
        args = {"out_split_no": "LPSP", "out_trade_no": "LPS-1", "lines": [line],
                "finish": False, "digest": digest_of(["LPSP"])}
        store.reserve_split(**args)
        store.refuse_split("LPSP", "RECEIVER_NOT_BOUND")
        store.reserve_split(**args)
        done = store.apply_split_result("LPSP", SplitResult(
            channel="toy-a", out_request_no="LPSP", status=SplitStatus.SUCCEEDED,
            lines=(SplitLineResult(kind="userId", account="2088000000000002",
                                   amount=Money(300), status=SplitStatus.SUCCEEDED),),
        ))
        assert done.status is SplitState.SUCCEEDED
        withdrawal = store.ledger.withdraw("w", Money(500))
        request = TransferRequest(out_transfer_no="LPPO", kind=ReceiverKind.USER_ID,
                                  account="2088000000000009", amount=Money(500), remark="r")
        store.reserve_payout("toy-a", withdrawal.id, request, digest_of(["LPPO"]))
        store.refuse_payout("LPPO", "PAYEE_NAME_MISMATCH")
        store.reserve_payout("toy-a", withdrawal.id, request, digest_of(["LPPO"]))
        paid = store.apply_payout_result("LPPO", TransferResult(
            channel="toy-a", out_transfer_no="LPPO", status=TransferStatus.SUCCEEDED))
        assert paid.status is PayoutState.SUCCEEDED
        assert store.verify_chain().ok
