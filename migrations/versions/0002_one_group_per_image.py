"""an image belongs to at most one group (unique index on group_members.image_id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:20:00
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_image_id"))
        batch_op.create_index(batch_op.f("ix_group_members_image_id"), ["image_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_image_id"))
        batch_op.create_index(batch_op.f("ix_group_members_image_id"), ["image_id"], unique=False)
