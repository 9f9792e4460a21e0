"""Fewer index entries per imported member (#24): a member import writes a tier history row, a
tag row and, with consent, a consent record per member, and every one of them went into indexes
that nothing reads.

- tier history: `from_tier` and `created_by` are empty on enrolments, imports and jobs (almost
  every row): partial indexes where set, which is what deleting a tier (PROTECT) or a user
  (SET NULL) looks for.
- consent records: the `member` index is covered by consent_latest (member first); the token keeps
  its plain index (renamed consent_token, not rebuilt) and loses the varchar_pattern_ops "_like"
  one (the token is looked up exactly); `created_by` partial as above.
- member tags (Django's own through table, no model to declare it on): the `member_id` index is
  covered by the unique (member_id, tag_id) index, and is dropped with SQL (the state keeps it:
  Django finds indexes by introspection when it alters a field, never by this name).

Non-atomic: the partial indexes are built CONCURRENTLY (the tables are written while the
migration runs); the indexes that go are only dropped, none is rebuilt.
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

CONFIRMATION_INDEX = "members_consentrecord_confirmation_token_46b4f313"
# Django's names for the foreign keys' indexes (a hash of table and column: the same everywhere).
DROPPED = {
    "members_consentrecord_member_id_150f9c68": ("members_consentrecord", "member_id"),
    "members_consentrecord_created_by_id_1e5592b4": ("members_consentrecord", "created_by_id"),
    "members_tierhistory_from_tier_id_c0c675d0": ("members_tierhistory", "from_tier_id"),
    "members_tierhistory_created_by_id_fd3241d5": ("members_tierhistory", "created_by_id"),
}

# The single-column, non-unique index on members_member_tags.member_id, whatever its name.
DROP_TAGS_MEMBER_INDEX = """
DO $$
DECLARE found text;
BEGIN
    SELECT c.relname INTO found FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'members_member_tags'::regclass AND NOT i.indisunique AND i.indnatts = 1
      AND i.indkey[0] = (SELECT attnum FROM pg_attribute
                         WHERE attrelid = 'members_member_tags'::regclass AND attname = 'member_id');
    IF found IS NOT NULL THEN
        EXECUTE format('DROP INDEX %I', found);
    END IF;
END $$"""
CREATE_TAGS_MEMBER_INDEX = ("CREATE INDEX IF NOT EXISTS members_member_tags_member_id_3c41ec66 "
                            "ON members_member_tags (member_id)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('members', '0023_member_active'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The partial indexes first, so no moment is without one.
        AddIndexConcurrently(
            model_name='consentrecord',
            index=models.Index(condition=models.Q(('created_by__isnull', False)), fields=['created_by'],
                               name='consent_staff'),
        ),
        AddIndexConcurrently(
            model_name='tierhistory',
            index=models.Index(condition=models.Q(('from_tier__isnull', False)), fields=['from_tier'],
                               name='tier_history_from_tier'),
        ),
        AddIndexConcurrently(
            model_name='tierhistory',
            index=models.Index(condition=models.Q(('created_by__isnull', False)), fields=['created_by'],
                               name='tier_history_staff'),
        ),
        # Then the old indexes are dropped by name: Django's AlterField would also drop and add
        # each foreign key again, checking every row of the table under a lock for nothing.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='consentrecord',
                    name='confirmation_token',
                    field=models.CharField(blank=True, editable=False, max_length=64),
                ),
                migrations.AddIndex(
                    model_name='consentrecord',
                    index=models.Index(fields=['confirmation_token'], name='consent_token'),
                ),
                migrations.AlterField(
                    model_name='consentrecord',
                    name='member',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='consents', to='members.member'),
                ),
                migrations.AlterField(
                    model_name='consentrecord',
                    name='created_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.SET_NULL, related_name='+',
                                            to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='tierhistory',
                    name='from_tier',
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.PROTECT, related_name='+',
                                            to='members.tier'),
                ),
                migrations.AlterField(
                    model_name='tierhistory',
                    name='created_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.SET_NULL, related_name='+',
                                            to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    [f"DROP INDEX IF EXISTS {CONFIRMATION_INDEX}_like", f"ALTER INDEX {CONFIRMATION_INDEX} RENAME TO consent_token",
                     *(f"DROP INDEX IF EXISTS {name}" for name in DROPPED)],
                    [f"ALTER INDEX consent_token RENAME TO {CONFIRMATION_INDEX}",
                     f"CREATE INDEX {CONFIRMATION_INDEX}_like ON members_consentrecord "
                     "(confirmation_token varchar_pattern_ops)",
                     *(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})"
                       for name, (table, column) in DROPPED.items())],
                ),
            ],
        ),
        migrations.RunSQL(DROP_TAGS_MEMBER_INDEX, CREATE_TAGS_MEMBER_INDEX),
    ]
