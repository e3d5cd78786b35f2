"""The ledger, risk reviews and reconciliation: payhub's own Alembic migrations
first (a project that ran 0001 before payhub had these tables gets them now),
then the tables described to Django as unmanaged models."""

from django.db import migrations, models  # type: ignore[import-untyped]

import payhub_django.models._fields
from payhub_django._tables import upgrade_store


class Migration(migrations.Migration):  # type: ignore[misc]  # Django ships no type hints
    # Alembic migrates on its own connection: hold no Django transaction meanwhile.
    atomic = False

    dependencies = [  # noqa: RUF012 - Django's own layout
        ("payhub_django", "0001_payhub_tables"),
    ]

    operations = [  # noqa: RUF012
        migrations.RunPython(upgrade_store, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name="LedgerEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("idempotency_key", models.CharField(max_length=191, unique=True)),
                ("cause", models.CharField(max_length=24)),
                ("reference", models.CharField(max_length=191)),
                ("party", models.CharField(max_length=64, null=True)),
                ("plan", models.CharField(max_length=32, null=True)),
                (
                    "available_on",
                    payhub_django.models._fields.UTCDateTimeField(
                        null=True, verbose_name="available on"
                    ),
                ),
                ("currency", models.CharField(max_length=3, null=True)),
                (
                    "pending_minor",
                    models.BigIntegerField(null=True, verbose_name="pending moved (minor units)"),
                ),
                ("digest", models.CharField(max_length=64)),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
            ],
            options={
                "verbose_name": "ledger entry",
                "verbose_name_plural": "ledger entries",
                "db_table": "payhub_ledger_entries",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Hold",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=191, unique=True)),
                ("party", models.CharField(max_length=64)),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("currency", models.CharField(max_length=3)),
                ("status", models.CharField(max_length=16)),
                ("reason", models.CharField(max_length=256, null=True)),
                (
                    "expires_at",
                    payhub_django.models._fields.UTCDateTimeField(
                        null=True, verbose_name="expires"
                    ),
                ),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "updated_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="updated"),
                ),
            ],
            options={
                "db_table": "payhub_ledger_holds",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="LedgerAccount",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("party", models.CharField(max_length=64)),
                ("kind", models.CharField(max_length=16)),
                ("currency", models.CharField(max_length=3)),
                (
                    "balance_minor",
                    models.BigIntegerField(default=0, verbose_name="balance (minor units)"),
                ),
                ("version", models.BigIntegerField(default=0)),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
            ],
            options={
                "verbose_name": "ledger account",
                "db_table": "payhub_ledger_accounts",
                "ordering": ("party", "kind", "currency"),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="LedgerLine",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("currency", models.CharField(max_length=3)),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
            ],
            options={
                "verbose_name": "ledger line",
                "db_table": "payhub_ledger_lines",
                "ordering": ("entry_id", "id"),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="ReconDifference",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("channel", models.CharField(max_length=64)),
                ("bill_date", models.DateField(verbose_name="bill date")),
                ("kind", models.CharField(max_length=24)),
                ("key", models.CharField(max_length=191)),
                (
                    "out_trade_no",
                    models.CharField(max_length=64, null=True, verbose_name="order number"),
                ),
                (
                    "out_refund_no",
                    models.CharField(max_length=64, null=True, verbose_name="refund number"),
                ),
                (
                    "channel_trade_id",
                    models.CharField(max_length=128, null=True, verbose_name="channel trade"),
                ),
                (
                    "bill_amount_minor",
                    models.BigIntegerField(null=True, verbose_name="bill amount (minor units)"),
                ),
                (
                    "store_amount_minor",
                    models.BigIntegerField(null=True, verbose_name="store amount (minor units)"),
                ),
                ("currency", models.CharField(max_length=3, null=True)),
                (
                    "bill_fee_minor",
                    models.BigIntegerField(null=True, verbose_name="bill fee (minor units)"),
                ),
                (
                    "expected_fee_minor",
                    models.BigIntegerField(null=True, verbose_name="expected fee (minor units)"),
                ),
                ("detail", payhub_django.models._fields.StoredJSONField()),
                ("status", models.CharField(max_length=16)),
                ("first_run_id", models.BigIntegerField(verbose_name="first run")),
                ("last_run_id", models.BigIntegerField(verbose_name="last run")),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "resolved_at",
                    payhub_django.models._fields.UTCDateTimeField(
                        null=True, verbose_name="resolved"
                    ),
                ),
                ("resolved_by", models.CharField(max_length=128, null=True)),
                ("resolution", models.CharField(max_length=512, null=True)),
            ],
            options={
                "verbose_name": "reconciliation difference",
                "db_table": "payhub_recon_items",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="RiskReview",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "out_trade_no",
                    models.CharField(max_length=64, unique=True, verbose_name="order number"),
                ),
                ("status", models.CharField(max_length=16)),
                ("rule", models.CharField(max_length=64)),
                ("verdict", payhub_django.models._fields.StoredJSONField()),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "decided_at",
                    payhub_django.models._fields.UTCDateTimeField(
                        null=True, verbose_name="decided"
                    ),
                ),
                ("decided_by", models.CharField(max_length=128, null=True)),
                ("note", models.CharField(max_length=512, null=True)),
                (
                    "out_refund_no",
                    models.CharField(max_length=64, null=True, verbose_name="refund number"),
                ),
            ],
            options={
                "verbose_name": "risk review",
                "db_table": "payhub_risk_reviews",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="SettlementBatch",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=191, unique=True)),
                ("party", models.CharField(max_length=64)),
                ("currency", models.CharField(max_length=3)),
                (
                    "available_on",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="available on"),
                ),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("entry_count", models.IntegerField(verbose_name="entries")),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
            ],
            options={
                "verbose_name": "settlement batch",
                "verbose_name_plural": "settlement batches",
                "db_table": "payhub_ledger_batches",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Withdrawal",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=191, unique=True)),
                ("party", models.CharField(max_length=64)),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("fee_minor", models.BigIntegerField(verbose_name="fee (minor units)")),
                ("currency", models.CharField(max_length=3)),
                ("status", models.CharField(max_length=16)),
                ("note", models.CharField(max_length=256, null=True)),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "updated_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="updated"),
                ),
            ],
            options={
                "db_table": "payhub_ledger_withdrawals",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="BatchMember",
            fields=[
                (
                    "entry",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=models.DO_NOTHING,
                        primary_key=True,
                        related_name="batch_membership",
                        serialize=False,
                        to="payhub_django.ledgerentry",
                    ),
                ),
            ],
            options={
                "verbose_name": "batch member",
                "db_table": "payhub_ledger_batch_members",
                "ordering": ("entry_id",),
                "managed": False,
            },
        ),
    ]
