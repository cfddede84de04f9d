"""groups.name becomes groups.title (up to 300 characters): the title shown wherever a group is named

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.alter_column("name", new_column_name="title", existing_type=sa.String(length=200),
                              type_=sa.String(length=300), existing_nullable=True)


def downgrade() -> None:
    # A title longer than the old column is cut, so that the narrower column accepts it on PostgreSQL too.
    groups = sa.table("groups", sa.column("title", sa.String(length=300)))
    op.execute(groups.update().where(sa.func.length(groups.c.title) > 200)
               .values(title=sa.func.substr(groups.c.title, 1, 200)))
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.alter_column("title", new_column_name="name", existing_type=sa.String(length=300),
                              type_=sa.String(length=200), existing_nullable=True)
