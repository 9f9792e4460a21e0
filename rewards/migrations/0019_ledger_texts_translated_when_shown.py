"""Ledger texts translated when shown (issue #23): a system text is stored as a key and its
parameters (core.stored_texts), and rendered in the reader's language.

Both columns have database defaults, so a raw INSERT that names neither still works (the row is
then a text without a key, which `shown_text` recognises when it is one of the known texts).

Existing rows are not migrated: the append-only trigger refuses every UPDATE (migration 0002),
and loosening it for a one-off rewrite of history is worse than recognising the known German and
English texts when they are shown. The trigger is widened only for erasure: the parameters can
name a person (the customer numbers of a merge), so an anonymising transaction (migration 0009)
may now rewrite `reason_params` as well as `reason` and `reference`.
"""

from django.db import migrations, models

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION rewards_pointentry_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE'
           AND current_setting('treuepunkt.ledger_anonymise', true) = 'on'
           AND (to_jsonb(NEW) - 'reason' - 'reference' - 'reason_params')
               = (to_jsonb(OLD) - 'reason' - 'reference' - 'reason_params') THEN
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


class Migration(migrations.Migration):

    dependencies = [
        ("rewards", "0018_earning_rule_threshold_currency"),
    ]

    operations = [
        migrations.AddField(
            model_name="pointentry",
            name="reason_code",
            field=models.CharField(blank=True, db_default="", default="", max_length=40, verbose_name="reason key"),
        ),
        migrations.AddField(
            model_name="pointentry",
            name="reason_params",
            field=models.JSONField(blank=True, db_default=models.Value({}, output_field=models.JSONField()),
                                   default=dict, verbose_name="reason parameters"),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
