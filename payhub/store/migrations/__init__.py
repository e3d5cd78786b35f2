"""Alembic migrations of the payment store (run by ``payhub db upgrade``)."""
