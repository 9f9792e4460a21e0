"""Erasure (Art. 17 DSGVO) may rewrite the texts of a ledger row, nothing else.

An entry's reason is typed by staff ("Kulanz für Frau Muster") and an opening balance's
reference names the customer number ("import-opening:K-1001"): both can identify the person
after the member row is anonymised. The trigger still refuses every DELETE and every UPDATE,
except one that changes only `reason` and `reference` inside a transaction that has set
`treuepunkt.ledger_anonymise = 'on'` (SET LOCAL: it ends with the transaction). Points, kinds,
members, dates and causes stay exactly as they were, so the ledger's sums cannot move.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION rewards_pointentry_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE'
           AND current_setting('treuepunkt.ledger_anonymise', true) = 'on'
           AND (to_jsonb(NEW) - 'reason' - 'reference') = (to_jsonb(OLD) - 'reason' - 'reference') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'rewards_pointentry is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
]
BACKWARD = [
    """
    CREATE OR REPLACE FUNCTION rewards_pointentry_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'rewards_pointentry is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
]


def run(statements):
    def apply(apps, schema_editor):
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("rewards", "0008_input_bounds")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
