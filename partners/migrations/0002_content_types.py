"""The moved models' content types follow them: the rows are renamed in place (app_label), so
their ids stay and everything that points at them stays attached: permissions (and so the staff
groups and users holding them), admin log entries and audit log entries. No data is copied.

On a fresh database there is nothing to rename yet (content types are created after `migrate`).
Where the new row exists already (a database that ran post_migrate with the new code before this
migration), the old row is left alone: `remove_stale_contenttypes` can clear it.
"""

from django.db import migrations

# (old app label, new app label, model)
MOVED = [
    ("rewards", "partners", "partner"),
    ("rewards", "partners", "store"),
    ("loyalty_site", "partners", "partnerapikey"),
    ("loyalty_site", "partners", "idempotencyrecord"),
    ("loyalty_site", "partners", "webhooksubscription"),
    ("loyalty_site", "partners", "webhookdelivery"),
    ("loyalty_site", "rewards", "partnerredemption"),
]


def _rename(apps, moves) -> None:
    from django.contrib.contenttypes.models import ContentType as CurrentContentType

    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_label, new_label, model in moves:
        if ContentType.objects.filter(app_label=new_label, model=model).exists():
            continue
        ContentType.objects.filter(app_label=old_label, model=model).update(app_label=new_label)
    CurrentContentType.objects.clear_cache()


def forwards(apps, schema_editor):
    _rename(apps, MOVED)


def backwards(apps, schema_editor):
    _rename(apps, [(new, old, model) for old, new, model in MOVED])


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('partners', '0001_initial'),
        ('loyalty_site', '0003_models_moved'),
        ('rewards', '0011_partners_moved'),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
