"""payhub's tables: created by payhub's own Alembic migrations (``upgrade_store``),
then described to Django as unmanaged models.

``manage.py migrate`` runs it on every database the routers allow payhub_django
on. Unapplying it (``migrate payhub_django zero``) leaves the tables: payhub
never downgrades a store. Later payhub schema changes arrive as payhub
migrations; ``manage.py payhub db upgrade`` applies them (and a later Django
migration of this app runs the same upgrade).
"""

from django.db import migrations, models  # type: ignore[import-untyped]

import payhub_django.models._fields
from payhub_django._tables import upgrade_store


class Migration(migrations.Migration):  # type: ignore[misc]  # Django ships no type hints
    initial = True
    # Alembic migrates on its own connection: hold no Django transaction meanwhile.
    atomic = False

    dependencies: list[tuple[str, str]] = []  # noqa: RUF012 - Django's own layout

    operations = [  # noqa: RUF012
        migrations.RunPython(upgrade_store, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name="Anomaly",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=191, unique=True)),
                ("kind", models.CharField(max_length=24)),
                ("out_trade_no", models.CharField(max_length=64, verbose_name="order number")),
                ("channel", models.CharField(max_length=64)),
                (
                    "channel_trade_id",
                    models.CharField(max_length=128, null=True, verbose_name="channel trade"),
                ),
                (
                    "amount_minor",
                    models.BigIntegerField(null=True, verbose_name="amount (minor units)"),
                ),
                ("currency", models.CharField(max_length=3, null=True)),
                ("source", models.CharField(max_length=320)),
                ("detail", payhub_django.models._fields.StoredJSONField()),
                ("status", models.CharField(max_length=16)),
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
                "verbose_name_plural": "anomalies",
                "db_table": "payhub_anomalies",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Attempt",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("seq", models.IntegerField()),
                ("channel", models.CharField(max_length=64)),
                ("outcome", models.CharField(max_length=24)),
                ("error_code", models.CharField(max_length=48, null=True)),
                ("channel_code", models.CharField(max_length=64, null=True)),
                ("message", models.CharField(max_length=255, null=True)),
                ("may_exist", models.BooleanField()),
                ("channel_trade_id", models.CharField(max_length=128, null=True)),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
            ],
            options={
                "db_table": "payhub_attempts",
                "ordering": ("payment_id", "seq"),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("from_status", models.CharField(max_length=24, null=True)),
                ("to_status", models.CharField(max_length=24)),
                ("cause", models.CharField(max_length=16)),
                ("source", models.CharField(max_length=320)),
                ("at", payhub_django.models._fields.UTCDateTimeField()),
            ],
            options={
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit trail",
                "db_table": "payhub_audit",
                "ordering": ("id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Event",
            fields=[
                ("seq", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "event_id",
                    models.CharField(
                        db_column="id", max_length=32, unique=True, verbose_name="event id"
                    ),
                ),
                ("type", models.CharField(max_length=48)),
                (
                    "out_trade_no",
                    models.CharField(max_length=64, null=True, verbose_name="order number"),
                ),
                ("payload", payhub_django.models._fields.StoredJSONField()),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "dispatched_at",
                    payhub_django.models._fields.UTCDateTimeField(
                        null=True, verbose_name="dispatched"
                    ),
                ),
                ("claimed_until", payhub_django.models._fields.UTCDateTimeField(null=True)),
                ("attempts", models.IntegerField(default=0)),
                ("last_error", models.CharField(max_length=512, null=True)),
            ],
            options={
                "db_table": "payhub_events",
                "ordering": ("-seq",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="InboxNotification",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("channel", models.CharField(max_length=64)),
                ("event_key", models.CharField(max_length=191)),
                ("kind", models.CharField(max_length=24)),
                ("out_trade_no", models.CharField(max_length=64, verbose_name="order number")),
                (
                    "received_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="received"),
                ),
                ("raw_body", models.BinaryField()),
                ("payload", payhub_django.models._fields.StoredJSONField(null=True)),
                ("outcome", models.CharField(max_length=16)),
                (
                    "processed_at",
                    payhub_django.models._fields.UTCDateTimeField(
                        null=True, verbose_name="processed"
                    ),
                ),
            ],
            options={
                "verbose_name": "inbox notification",
                "db_table": "payhub_notifications",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Payment",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "out_trade_no",
                    models.CharField(max_length=64, unique=True, verbose_name="order number"),
                ),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("currency", models.CharField(max_length=3)),
                ("subject", models.CharField(max_length=256)),
                ("method", models.CharField(max_length=16)),
                ("status", models.CharField(max_length=24)),
                ("channel", models.CharField(max_length=64, null=True)),
                (
                    "channel_trade_id",
                    models.CharField(max_length=128, null=True, verbose_name="channel trade"),
                ),
                ("channel_context", models.TextField(null=True)),
                (
                    "paid_at",
                    payhub_django.models._fields.UTCDateTimeField(null=True, verbose_name="paid"),
                ),
                (
                    "refunded_minor",
                    models.BigIntegerField(default=0, verbose_name="refunded (minor units)"),
                ),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "updated_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="updated"),
                ),
                ("version", models.IntegerField(default=1)),
                ("deferred_refunds", models.BooleanField(default=False)),
            ],
            options={
                "db_table": "payhub_payments",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Refund",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "out_refund_no",
                    models.CharField(max_length=64, unique=True, verbose_name="refund number"),
                ),
                ("channel", models.CharField(max_length=64)),
                ("amount_minor", models.BigIntegerField(verbose_name="amount (minor units)")),
                ("currency", models.CharField(max_length=3)),
                ("status", models.CharField(max_length=16)),
                (
                    "channel_refund_id",
                    models.CharField(max_length=128, null=True, verbose_name="channel refund"),
                ),
                ("reason", models.CharField(max_length=256, null=True)),
                ("origin", models.CharField(max_length=16)),
                (
                    "created_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="created"),
                ),
                (
                    "updated_at",
                    payhub_django.models._fields.UTCDateTimeField(verbose_name="updated"),
                ),
                ("channel_context", models.TextField(null=True)),
                ("anomaly_id", models.BigIntegerField(null=True)),
            ],
            options={
                "db_table": "payhub_refunds",
                "ordering": ("-id",),
                "managed": False,
            },
        ),
    ]
