"""ImportJob and ExportLog moved from members to transfers: the tables stay, and on a database
migrated before the move the content types are relabelled, so permissions (and the staff
groups holding them) and admin log entries stay attached."""

from __future__ import annotations

import importlib

from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command

from tests import factories
from transfers.models import ExportLog, ImportJob

relabel = importlib.import_module("transfers.migrations.0002_content_types").relabel


def test_the_moved_models_keep_their_tables():
    assert ImportJob._meta.db_table == "members_importjob"
    assert ExportLog._meta.db_table == "members_exportlog"


def test_the_models_moved_without_pending_migrations(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits non-zero if a migration is missing


def test_relabelling_keeps_permissions_groups_and_log_entries_attached(db, django_user_model):
    content_type = ContentType.objects.get_for_model(ImportJob)
    permission = Permission.objects.get(content_type=content_type, codename="add_importjob")
    group = Group.objects.create(name="Importers")
    group.permissions.add(permission)
    staff = django_user_model.objects.create(username="clerk", is_staff=True)
    staff.groups.add(group)
    job = factories.ImportJobFactory()
    LogEntry.objects.create(user=staff, content_type=content_type, object_id=str(job.pk), object_repr=str(job),
                            action_flag=ADDITION)
    # A database migrated before the move has the rows under "members".
    ContentType.objects.filter(pk=content_type.pk).update(app_label="members")
    ContentType.objects.clear_cache()

    relabel("members", "transfers")(apps, None)
    ContentType.objects.clear_cache()

    moved = ContentType.objects.get(pk=content_type.pk)
    assert (moved.app_label, moved.model) == ("transfers", "importjob")
    assert django_user_model.objects.get(pk=staff.pk).has_perm("transfers.add_importjob")
    assert LogEntry.objects.get(object_id=str(job.pk)).get_edited_object() == job
