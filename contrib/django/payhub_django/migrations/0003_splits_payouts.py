"""Splits (分账) and payouts: payhub's own Alembic migrations first (a project
that applied 0002 before payhub had ``payhub_splits`` and ``payhub_payouts``
gets them now), then the two tables described to Django as unmanaged models."""

from django.db import migrations, models  # type: ignore[import-untyped]

import payhub_django.models._fields
from payhub_django._tables import upgrade_store


class Migration(migrations.Migration):  # type: ignore[misc]  # Django ships no type hints
    # Alembic migrates on its own connection: hold no Django transaction meanwhile.
    atomic = False

    dependencies = [  # noqa: RUF012 - Django's own layout
        ("payhub_django", "0002_ledger_reviews_recon"),
    ]

    operations = [  # noqa: RUF012
        migrations.RunPython(upgrade_store, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name="Payout",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "out_payout_no",
                    models.CharField(max_length=32, unique=True, verbose_name="payout number"),
                ),
                ("party", models.CharField(max_length=64)),
                ("channel", models.CharField(max_length=64)),
                ("payee_kind", models.CharField(max_length=16, verbose_name="payee kind")),
                ("payee_account", models.CharField(max_length=64, verbose_name="payee account")),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("currency", models.CharField(max_length=3)),
                ("digest", models.CharField(max_length=64)),
                ("status", models.CharField(max_length=16)),
                (
                    "channel_transfer_id",
                    models.CharField(max_length=128, null=True, verbose_name="channel transfer"),
                ),
                ("package_info", models.CharField(max_length=512, null=True)),
                ("error", models.CharField(max_length=256, null=True)),
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
                "db_table": "payhub_payouts",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Split",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "out_split_no",
                    models.CharField(max_length=32, unique=True, verbose_name="split number"),
                ),
                ("out_trade_no", models.CharField(max_length=64, verbose_name="order number")),
                ("channel", models.CharField(max_length=64)),
                (
                    "channel_trade_id",
                    models.CharField(max_length=128, verbose_name="channel trade"),
                ),
                ("seller", models.CharField(max_length=64, null=True)),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("currency", models.CharField(max_length=3)),
                ("finish", models.BooleanField(default=False)),
                ("digest", models.CharField(max_length=64)),
                ("status", models.CharField(max_length=16)),
                (
                    "channel_split_id",
                    models.CharField(max_length=128, null=True, verbose_name="channel split"),
                ),
                ("lines", payhub_django.models._fields.StoredJSONField()),
                ("error", models.CharField(max_length=256, null=True)),
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
                "db_table": "payhub_splits",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
    ]
