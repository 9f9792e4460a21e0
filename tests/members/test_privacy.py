"""Personal data: every model is accounted for, erasure reaches everything that names the person,
and the retention job warns, erases and purges on time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.apps import apps
from django.core import mail
from django.db import models as db_models
from django.utils import timezone

from campaigns.models import Message
from members.erasure import member_erase
from members.models import ConsentRecord, Member
from members.privacy import NOT_PERSONAL_FIELDS, PERSONAL_DATA, PERSONAL_FIELDS, retention_run
from members.services import consent_record
from partners.models import WebhookDelivery
from rewards.purchases import purchase_record
from tests import factories
from transfers.models import ImportJob

# Columns that can hold something about a person: text of any kind, e-mail and IP addresses,
# dates, JSON, files.
LOOKS_PERSONAL = (db_models.CharField, db_models.TextField, db_models.GenericIPAddressField, db_models.DateField,
                  db_models.JSONField, db_models.BinaryField, db_models.FileField)


def test_every_model_says_what_happens_to_its_personal_data():
    """A new model (ours or a library's) must be added to members.privacy.PERSONAL_DATA (and
    docs/privacy.md)."""
    models = {model._meta.label for model in apps.get_models() if not model._meta.auto_created}
    assert sorted(models - PERSONAL_DATA.keys()) == []
    assert sorted(PERSONAL_DATA.keys() - models) == []  # and no stale entries


def unclassified_fields(personal: dict[str, dict[str, str]], not_personal: dict[str, str]) -> list[str]:
    """Every column that looks personal and is neither in `personal` nor in `not_personal`."""
    missing = []
    for model in apps.get_models():
        label = model._meta.label
        named = set(personal.get(label, {})) | set(not_personal.get(label, "").split())
        missing += [f"{label}.{field.name}" for field in model._meta.concrete_fields
                    if isinstance(field, LOOKS_PERSONAL) and not field.primary_key and field.name not in named]
    return sorted(missing)


def test_every_field_that_may_hold_personal_data_is_classified():
    """A new text, e-mail, IP, date, JSON or file field on any model goes into
    members.privacy.PERSONAL_FIELDS (with what erasure does to it) or NOT_PERSONAL_FIELDS."""
    assert unclassified_fields(PERSONAL_FIELDS, NOT_PERSONAL_FIELDS) == []
    existing = {f"{model._meta.label}.{field.name}" for model in apps.get_models()
                for field in model._meta.concrete_fields}
    named = {f"{label}.{name}" for label, fields in PERSONAL_FIELDS.items() for name in fields}
    named_not = {f"{label}.{name}" for label, names in NOT_PERSONAL_FIELDS.items() for name in names.split()}
    assert sorted((named | named_not) - existing) == []  # no stale entries
    assert sorted(named & named_not) == []  # and each field decided once


def test_a_new_personal_looking_field_is_caught():
    without_phone = {label: {name: how for name, how in fields.items() if (label, name) != ("members.Member", "phone")}
                     for label, fields in PERSONAL_FIELDS.items()}
    assert unclassified_fields(without_phone, NOT_PERSONAL_FIELDS) == ["members.Member.phone"]


def test_erasure_removes_the_address_of_sent_messages_and_the_ip_of_consents(tiers):
    member = factories.enrolled_member(email="lena@example.org")
    consent_record(member=member, purpose="email", granted=True, source="portal", ip_address="203.0.113.7")
    campaign = factories.CampaignFactory()
    factories.MessageFactory(campaign=campaign, member=member, to_address="lena@example.org",
                             status=Message.Status.SENT)
    member_erase(member_id=member.pk)
    assert not ConsentRecord.objects.filter(member=member).exclude(ip_address=None).exists()
    assert ConsentRecord.objects.filter(member=member).count() == 2  # the proof stays: given, then withdrawn
    assert Message.objects.get(member=member).to_address == ""


def _inactive_member(days: int, **fields) -> Member:
    member = factories.enrolled_member(**fields)
    Member.objects.filter(pk=member.pk).update(joined_at=timezone.now() - timedelta(days=days))
    return member


def test_inactive_members_are_warned_then_erased_unless_they_come_back(tiers, partner, base_rule, settings):
    settings.LOYALTY_RETENTION_INACTIVE_DAYS, settings.LOYALTY_RETENTION_WARNING_DAYS = 1000, 30
    sleeper = _inactive_member(1200, email="sleeper@example.org", language="de")
    returner = _inactive_member(1200, email="back@example.org")
    recent = _inactive_member(100, email="recent@example.org")

    first = retention_run()
    assert first.warned == 2 and first.erased == 0
    assert sorted(message.to[0] for message in mail.outbox) == ["back@example.org", "sleeper@example.org"]
    assert retention_run().warned == 0  # warned once
    purchase_record(member_id=returner.pk, partner=partner, order_reference="BACK", amount=Decimal("5"))

    later = retention_run(now=timezone.now() + timedelta(days=31))
    assert later.erased == 1 and later.warnings_cancelled == 1
    assert Member.objects.get(pk=sleeper.pk).status == Member.Status.ERASED
    assert Member.objects.get(pk=returner.pk).status == Member.Status.ACTIVE
    assert Member.objects.get(pk=returner.pk).retention_warned_at is None
    assert Member.objects.get(pk=recent.pk).status == Member.Status.ACTIVE


def test_logs_with_personal_data_are_purged_after_their_periods(tiers, settings):
    old = timezone.now() - timedelta(days=120)
    delivery = factories.WebhookDeliveryFactory(status=WebhookDelivery.Status.DELIVERED)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=old)
    fresh = factories.WebhookDeliveryFactory(status=WebhookDelivery.Status.DELIVERED)
    member = factories.enrolled_member()
    LogEntry.objects.log_create(member, action=LogEntry.Action.UPDATE, changes={"city": ["A", "B"]},
                                remote_addr="198.51.100.4")
    LogEntry.objects.update(timestamp=old)
    job = factories.ImportJobFactory(errors=[{"line": 2, "column": "E-Mail", "message": "x@y"}])
    ImportJob.objects.filter(pk=job.pk).update(created_at=old)

    report = retention_run()
    assert report.webhook_deliveries_deleted == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert report.audit_ips_removed == 1 and not LogEntry.objects.exclude(remote_addr=None).exists()
    assert report.import_reports_cleared == 1 and ImportJob.objects.get(pk=job.pk).errors == []
    assert retention_run().import_reports_cleared == 0  # nothing left to clear


def test_the_retention_job_is_scheduled_nightly():
    from loyalty_site.schedules import PERIODIC_TASKS

    assert any(task == "members.tasks.apply_retention" for _name, task, _when in PERIODIC_TASKS)


@pytest.mark.parametrize("label", ["docs/privacy.md"])
def test_the_processing_record_exists(label):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / label).read_text()
    assert "LOYALTY_RETENTION_INACTIVE_DAYS" in text and "Art. 30" in text
