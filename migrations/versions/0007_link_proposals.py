"""link_proposals: pairs proposed as visual links by `vislink proposals build`, with score, rank, variant and
verdict (issue #19 item 1)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATUSES = ("open", "accepted", "rejected")


def upgrade() -> None:
    op.create_table(
        "link_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("image_a_id", sa.Integer(), nullable=False),
        sa.Column("image_b_id", sa.Integer(), nullable=False),
        sa.Column("variant_name", sa.String(length=120), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum(*STATUSES, name="proposal_status", native_enum=False, length=16),
                  nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("image_a_id < image_b_id", name=op.f("ck_link_proposals_ordered_pair")),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"],
                                name=op.f("fk_link_proposals_collection_id_collections"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_a_id"], ["images.id"], name=op.f("fk_link_proposals_image_a_id_images"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_b_id"], ["images.id"], name=op.f("fk_link_proposals_image_b_id_images"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name=op.f("fk_link_proposals_link_id_links"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["annotators.id"],
                                name=op.f("fk_link_proposals_decided_by_id_annotators"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_proposals")),
        sa.UniqueConstraint("image_a_id", "image_b_id", name="uq_link_proposals_pair"),
    )
    with op.batch_alter_table("link_proposals", schema=None) as batch_op:
        batch_op.create_index("ix_link_proposals_collection_status", ["collection_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_link_proposals_image_b_id"), ["image_b_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("link_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_proposals_image_b_id"))
        batch_op.drop_index("ix_link_proposals_collection_status")
    op.drop_table("link_proposals")
