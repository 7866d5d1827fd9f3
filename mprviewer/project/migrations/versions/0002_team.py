"""Teams: assignments, members (adjudicators), final-label events, append-only enforced.

On every database the events table refuses UPDATE and DELETE (a trigger). On PostgreSQL
the events are also guarded by row-level security: a reader (a database role) reads only
their own events until every reader assigned to the study has finished it, writes only
events in their own name on studies assigned to them, and only adjudicators write final
labels. The project's owner (the role that created the tables) is not bound by the
policies: it sets up readers and assignments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POSTGRES_UP = [
    """
    CREATE FUNCTION mprviewer_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events are append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION mprviewer_refuse_change()
    """,
    """
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION mprviewer_refuse_change()
    """,
    """
    CREATE FUNCTION mprviewer_is_adjudicator(who text) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public COST 1000 AS $$
        SELECT EXISTS (SELECT 1 FROM members WHERE name = who AND role = 'adjudicator')
    $$
    """,
    """
    CREATE FUNCTION mprviewer_assigned(study integer, who text) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public COST 1000 AS $$
        SELECT EXISTS (SELECT 1 FROM assignments WHERE study_id = study AND reader = who)
    $$
    """,
    """
    CREATE FUNCTION mprviewer_unblinded(study integer) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public COST 10000 AS $$
        SELECT EXISTS (SELECT 1 FROM assignments a WHERE a.study_id = study)
           AND NOT EXISTS (
               SELECT 1 FROM assignments a
               WHERE a.study_id = study
                 AND COALESCE((SELECT e.status FROM events e
                               WHERE e.study_id = study AND e.reader = a.reader
                                 AND e.action = 'status' AND e.stage IS NULL
                               ORDER BY e.id DESC LIMIT 1), 'unread')
                     NOT IN ('done', 'no finding'))
    $$
    """,
    "ALTER TABLE events ENABLE ROW LEVEL SECURITY",
    """
    CREATE POLICY events_read ON events FOR SELECT USING (
        reader = current_user
        OR mprviewer_is_adjudicator(current_user)
        OR mprviewer_unblinded(study_id))
    """,
    """
    CREATE POLICY events_write ON events FOR INSERT WITH CHECK (
        reader = current_user
        AND ((stage IS NULL AND mprviewer_assigned(study_id, current_user)
              AND NOT mprviewer_unblinded(study_id))
             OR (stage = 'final' AND mprviewer_is_adjudicator(current_user))))
    """,
]

SQLITE_UP = [
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END
    """,
]


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("stage", sa.String(16)))
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("reader", sa.String(128), nullable=False),
        sa.Column("assigned", sa.String(32), nullable=False),
        sa.UniqueConstraint("study_id", "reader", name="uq_assignments_study_reader"),
    )
    op.create_table(
        "members",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_UP if dialect == "postgresql" else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP POLICY events_write ON events")
        op.execute("DROP POLICY events_read ON events")
        op.execute("ALTER TABLE events DISABLE ROW LEVEL SECURITY")
        op.execute("DROP TRIGGER events_no_truncate ON events")
        op.execute("DROP TRIGGER events_append_only ON events")
        for name in ("mprviewer_unblinded(integer)", "mprviewer_assigned(integer, text)",
                     "mprviewer_is_adjudicator(text)", "mprviewer_refuse_change()"):
            op.execute(f"DROP FUNCTION {name}")
    else:
        op.execute("DROP TRIGGER events_no_delete")
        op.execute("DROP TRIGGER events_no_update")
    op.drop_table("members")
    op.drop_table("assignments")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("stage")
