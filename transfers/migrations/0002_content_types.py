"""The content types of ImportJob and ExportLog move from app label "members" to "transfers",
so their permissions (and the staff groups holding them), admin log entries and audit log
entries stay attached. A fresh database has no such rows yet: post_migrate creates them."""

from django.db import migrations

MODELS = ("importjob", "exportlog")


def relabel(old: str, new: str):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        for model in MODELS:
            if ContentType.objects.filter(app_label=new, model=model).exists():
                continue  # already there (created by an earlier post_migrate): keep it
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("transfers", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(relabel("members", "transfers"), relabel("transfers", "members")),
    ]
