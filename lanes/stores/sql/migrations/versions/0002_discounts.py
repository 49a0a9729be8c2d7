"""The providers' discounts on each outcome: the batch API's and the prompt cache's.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Plain ALTER TABLE on both databases: SQLite adds (and, from 3.35, drops) a column in place,
where a batch (copy-and-rename) migration would break the views that read the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    batched = sa.Column("batched", sa.Boolean, nullable=False, server_default=sa.false())
    op.add_column("routing_outcomes", batched)
    for name in ("batch_saved_usd", "prompt_cache_saved_usd"):
        column = sa.Column(name, sa.Float, nullable=False, server_default="0")
        op.add_column("routing_outcomes", column)


def downgrade() -> None:
    for name in ("prompt_cache_saved_usd", "batch_saved_usd", "batched"):
        op.drop_column("routing_outcomes", name)
