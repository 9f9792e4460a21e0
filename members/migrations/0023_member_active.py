"""The active members' keys as a partial index (issue #24): segment counts join their member lists
with `Member.objects.active()` by primary key, and read this index alone instead of the wide rows."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("members", "0022_consent_state"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="member",
            index=models.Index(condition=models.Q(("status", "active")), fields=["id"], name="member_active"),
        ),
    ]
