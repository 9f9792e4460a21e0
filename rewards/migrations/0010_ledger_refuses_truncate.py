"""On PostgreSQL the ledger refuses TRUNCATE too, like UPDATE and DELETE (0002, 0009).

TRUNCATE fires no row triggers, so it needs a statement trigger of its own. It also fires for
a table emptied through `TRUNCATE … CASCADE` from a table the ledger refers to.

One door stays open, on purpose and by name: a transaction that has run
`SET LOCAL treuepunkt.ledger_truncate = 'allowed'`. Only the test suite's teardown does that
(Django's flush empties every table with one TRUNCATE between transactional tests; see
tests/conftest.py). `manage.py flush` on a real database is refused, which is the point.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION rewards_pointentry_no_truncate() RETURNS trigger AS $$
    BEGIN
        IF current_setting('treuepunkt.ledger_truncate', true) = 'allowed' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'rewards_pointentry is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER rewards_pointentry_no_truncate
    BEFORE TRUNCATE ON rewards_pointentry
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_pointentry_no_truncate()
    """,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS rewards_pointentry_no_truncate ON rewards_pointentry",
    "DROP FUNCTION IF EXISTS rewards_pointentry_no_truncate()",
]


def run(statements):
    def apply(apps, schema_editor):
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("rewards", "0009_ledger_texts_anonymisable")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
