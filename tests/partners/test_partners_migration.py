"""Moving Partner, Store and the partner API's models into the partners app changes no data: a
database migrated with the old layout (rewards and loyalty_site owning them) migrates forward with
every row, permission, group grant and admin/audit log entry still attached."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The last migrations before the move (main before #21), and the move's own.
BEFORE_THE_MOVE = [("rewards", "0010_ledger_refuses_truncate"), ("loyalty_site", "0002_partner_scope"),
                   ("members", "0017_importjob_attempts"), ("feedback", "0002_input_bounds"), ("partners", None)]
MOVED = {"partner": "partners", "store": "partners", "partnerapikey": "partners", "idempotencyrecord": "partners",
         "webhooksubscription": "partners", "webhookdelivery": "partners", "partnerredemption": "rewards"}


@pytest.mark.django_db(transaction=True)
def test_a_database_of_the_old_layout_migrates_to_the_partners_app_keeping_rows_and_permissions():
    from auditlog.models import LogEntry as AuditEntry
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    from partners.models import Partner, PartnerAPIKey, Store, WebhookDelivery, WebhookSubscription
    from rewards.models import PartnerRedemption

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE_THE_MOVE)
        ContentType.objects.clear_cache()
        assert not ContentType.objects.filter(app_label="partners").exists()
        old = executor.loader.project_state([node for node in BEFORE_THE_MOVE if node[1]]).apps
        partner = old.get_model("rewards", "Partner").objects.create(name="Altkunde GmbH")
        store = old.get_model("rewards", "Store").objects.create(partner=partner, code="A1", name="Altstadt")
        key = old.get_model("loyalty_site", "PartnerAPIKey").objects.create(
            id="k1", prefix="abcdefgh", hashed_key="x", name="till", partner=partner, scopes=["members:read"])
        key.stores.add(store)
        subscription = old.get_model("loyalty_site", "WebhookSubscription").objects.create(
            partner=partner, url="https://example.org/hook", events=["points.earned"])
        old.get_model("loyalty_site", "WebhookDelivery").objects.create(
            subscription=subscription, event="points.earned", payload={"member_id": "m"})
        partner_type = ContentType.objects.get(app_label="rewards", model="partner")
        key_type = ContentType.objects.get(app_label="loyalty_site", model="partnerapikey")
        viewers = Group.objects.create(name="Partner viewers (old layout)")
        viewers.permissions.add(*partner_type.permission_set.all(), *key_type.permission_set.filter(
            codename="view_partnerapikey"))
        staff = get_user_model().objects.create_user(username="staff-old-layout", is_staff=True)
        admin_entry = LogEntry.objects.create(user=staff, content_type_id=partner_type.pk, object_id=str(partner.pk),
                                              object_repr="Altkunde GmbH", action_flag=1)
        audit_entry = AuditEntry.objects.create(content_type_id=partner_type.pk, object_pk=str(partner.pk),
                                                object_repr="Altkunde GmbH", action=0)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)  # whatever happened: the schema the other tests expect
        ContentType.objects.clear_cache()

    moved = Partner.objects.get(pk=partner.pk)
    assert moved.name == "Altkunde GmbH" and Store.objects.get(pk=store.pk).partner == moved
    assert list(PartnerAPIKey.objects.get(pk="k1").stores.all()) == [Store.objects.get(pk=store.pk)]
    deliveries = WebhookSubscription.objects.get(pk=subscription.pk).deliveries
    assert deliveries.count() == WebhookDelivery.objects.count() == 1
    assert PartnerRedemption._meta.db_table == "loyalty_site_partnerredemption"
    # The content types were renamed in place: same ids, so permissions, grants and log entries follow.
    for model, app_label in MOVED.items():
        assert ContentType.objects.filter(model=model).values_list("app_label", flat=True).get() == app_label
    assert ContentType.objects.get(app_label="partners", model="partner").pk == partner_type.pk
    assert set(Group.objects.get(pk=viewers.pk).permissions.values_list("content_type__app_label", "codename")) == {
        ("partners", "add_partner"), ("partners", "change_partner"), ("partners", "delete_partner"),
        ("partners", "view_partner"), ("partners", "view_partnerapikey")}
    assert LogEntry.objects.get(pk=admin_entry.pk).get_edited_object() == moved
    assert AuditEntry.objects.get(pk=audit_entry.pk).content_type.model_class() is Partner
