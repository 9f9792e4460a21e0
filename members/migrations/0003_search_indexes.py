"""Trigram indexes so the admin's icontains search stays fast at a million members (PostgreSQL only)."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS member_email_trgm ON members_member USING gin (upper(email) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS member_last_name_trgm ON members_member USING gin (upper(last_name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS member_first_name_trgm ON members_member USING gin (upper(first_name) gin_trgm_ops)",
]
BACKWARD = ["DROP INDEX IF EXISTS member_email_trgm", "DROP INDEX IF EXISTS member_last_name_trgm",
            "DROP INDEX IF EXISTS member_first_name_trgm"]


def run(statements):
    def apply(apps, schema_editor):
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("members", "0002_staff_groups")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
