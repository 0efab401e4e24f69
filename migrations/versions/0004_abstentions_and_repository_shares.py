"""Why a prediction abstained, the PTM share it was decided at, and each repository's estimated share.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('abstain_reason', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('ptm_score_at_training_share', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('ptm_share', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('ptm_threshold', sa.Float(), nullable=True))
    op.create_table('repo_shares',
    sa.Column('repository_id', sa.BigInteger(), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('issues', sa.Integer(), nullable=False),
    sa.Column('known', sa.Integer(), nullable=False),
    sa.Column('estimated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], ),
    sa.PrimaryKeyConstraint('repository_id')
    )


def downgrade() -> None:
    op.drop_table('repo_shares')
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_column('ptm_threshold')
        batch_op.drop_column('ptm_share')
        batch_op.drop_column('ptm_score_at_training_share')
        batch_op.drop_column('abstain_reason')
