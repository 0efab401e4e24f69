"""Each delivery's ordering key (``repository id#issue number``), stored when it arrives, so that any worker
can tell whether an earlier delivery about the same issue is still unfinished (``app.queue.ordering``).

Revision ID: 0009
Revises: 0008
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _key(event: str, payload: str | None) -> str | None:
    """``app.queue.ordering.ordering_key`` as it was when this migration was written (a migration does not follow
    the code that changes after it)."""
    if event not in ('issues', 'issue_comment') or payload is None:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    repo, issue = (data.get('repository'), data.get('issue')) if isinstance(data, dict) else (None, None)
    if not isinstance(repo, dict) or not isinstance(issue, dict):
        return None
    return f"{repo.get('id')}#{issue.get('number')}"[:80]


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ordering_key', sa.String(length=80), nullable=True))
        batch_op.create_index('ix_deliveries_ordering_key', ['ordering_key'])
    # Finished deliveries never wait for one another: only those still to be worked need their key.
    deliveries = sa.table('deliveries', sa.column('id', sa.String), sa.column('event', sa.String),
                          sa.column('payload', sa.Text), sa.column('status', sa.String),
                          sa.column('ordering_key', sa.String))
    conn = op.get_bind()
    rows = conn.execute(sa.select(deliveries.c.id, deliveries.c.event, deliveries.c.payload)
                        .where(deliveries.c.status.in_(('pending', 'processing')))).all()
    for delivery_id, event, payload in rows:
        key = _key(event, payload)
        if key is not None:
            conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(ordering_key=key))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_ordering_key')
        batch_op.drop_column('ordering_key')
