"""The first schema: settings, sources, studies, series, images and the event log.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("root", sa.Text, nullable=False),
        sa.Column("added", sa.String(32), nullable=False),
    )
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False, unique=True),
        sa.Column("study_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("locations", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("added", sa.String(32), nullable=False),
    )
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("number", sa.Integer),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("acquisition_plane", sa.String(16), nullable=False),
        sa.Column("plane_sizes", sa.Text, nullable=False),
        sa.Column("n_images", sa.Integer, nullable=False),
    )
    op.create_index("ix_series_study_id", "series", ["study_id"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        sa.Column("slice", sa.Integer, nullable=False),
        sa.Column("sop_uid", sa.String(64), nullable=False),
        sa.Column("frame", sa.Integer),
    )
    op.create_index("ix_images_series_id", "images", ["series_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_uid", sa.String(32), nullable=False, unique=True),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("reader", sa.String(128), nullable=False),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id")),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("plane", sa.String(16)),
        sa.Column("slices", sa.Text),
        sa.Column("status", sa.String(16)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_events_study_reader", "events", ["study_id", "reader"])


def downgrade() -> None:
    for table in ("events", "images", "series", "studies", "sources", "settings"):
        op.drop_table(table)
