"""On PostgreSQL the ledger refuses UPDATE and DELETE, even from raw SQL or a superuser.

TRUNCATE is a different statement, not covered by row triggers: see 0010.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION rewards_pointentry_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'rewards_pointentry is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER rewards_pointentry_append_only
    BEFORE UPDATE OR DELETE ON rewards_pointentry
    FOR EACH ROW EXECUTE FUNCTION rewards_pointentry_append_only()
    """,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS rewards_pointentry_append_only ON rewards_pointentry",
    "DROP FUNCTION IF EXISTS rewards_pointentry_append_only()",
]


def run(statements):
    def apply(apps, schema_editor):
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("rewards", "0001_initial")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
