"""index images.duplicate_of_id (the pipeline looks duplicates up by it at every batch)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:20:00
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_duplicate_of_id"), ["duplicate_of_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_duplicate_of_id"))
