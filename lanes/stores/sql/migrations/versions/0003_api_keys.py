"""The API keys lanes issues: their digests, owners and revocations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

A key is stored as its SHA-256 digest (unique, indexed: a request's key is looked up by it),
never in plaintext; ``key_id`` is the public name a key is listed and revoked by.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String, primary_key=True),
        *(sa.Column(n, sa.String, nullable=False) for n in ("digest", "last4", "project")),
        *(sa.Column(n, sa.String, nullable=True) for n in ("user_name", "name")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_digest", "api_keys", ["digest"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_api_keys_digest", table_name="api_keys")
    op.drop_table("api_keys")
