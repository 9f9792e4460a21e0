"""The programme settings record (rewards.programme): the return window is changed in the
console by the programme's role, applies to purchases recorded after the change, is audited,
and is read on the purchase path from a per-process copy (no query per purchase)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from auditlog.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from rewards import programme
from rewards.models import ProgrammeSettings
from rewards.purchases import purchase_record
from tests import factories


def buy(member, partner, reference):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference,
                           amount=Decimal("10")).purchase


def test_without_a_record_the_server_setting_applies(db, settings):
    settings.LOYALTY_RETURN_WINDOW_DAYS = 21
    assert programme.return_window_days() == 21
    settings.LOYALTY_RETURN_WINDOW_DAYS = 0
    assert programme.return_window_days() == 0


def test_the_console_form_starts_from_the_server_setting(client, db, settings):
    settings.LOYALTY_RETURN_WINDOW_DAYS = 14
    client.force_login(factories.staff_in("Marketing"))
    assert client.get(reverse("admin:rewards_programmesettings_changelist")).status_code == 200
    page = client.get(reverse("admin:rewards_programmesettings_add"))
    assert page.context["adminform"].form.initial["return_window_days"] == 14
    assert "purchases already recorded keep the day their points become available" in page.content.decode()


def test_a_window_set_in_the_console_holds_purchases_recorded_after_it_only(client, member, partner, base_rule,
                                                                             settings):
    settings.LOYALTY_RETURN_WINDOW_DAYS = 0
    before = buy(member, partner, "before")
    assert before.points_pending == 0

    client.force_login(factories.staff_in("Marketing"))
    response = client.post(reverse("admin:rewards_programmesettings_add"), {"return_window_days": "14"})
    assert response.status_code == 302
    after = buy(member, partner, "after")

    assert after.points_pending == 10
    assert after.available_at > timezone.now() + timedelta(days=13)
    before.refresh_from_db()
    assert before.points_pending == 0 and before.available_at <= timezone.now()  # kept as it was recorded

    # The list shows the one record; a second record cannot be added.
    listing = client.get(reverse("admin:rewards_programmesettings_changelist")).content.decode()
    assert reverse("admin:rewards_programmesettings_change", args=[1]) in listing
    assert client.get(reverse("admin:rewards_programmesettings_add")).status_code == 403


def test_a_change_is_in_the_audit_trail_with_who_made_it(client, db):
    programme.programme_settings_update(return_window_days=14)
    user = factories.staff_in("Marketing")
    client.force_login(user)
    response = client.post(reverse("admin:rewards_programmesettings_change", args=[1]), {"return_window_days": "30"})
    assert response.status_code == 302
    assert programme.return_window_days() == 30
    entry = LogEntry.objects.get_for_object(ProgrammeSettings.objects.get()).latest("timestamp")
    assert entry.actor == user
    assert entry.changes_dict["return_window_days"] == ["14", "30"]


def test_support_may_not_change_the_programme_settings(client, db):
    programme.programme_settings_update(return_window_days=14)
    client.force_login(factories.staff_in("Support"))
    response = client.post(reverse("admin:rewards_programmesettings_change", args=[1]), {"return_window_days": "0"})
    assert response.status_code == 403
    assert programme.return_window_days() == 14


def test_a_window_beyond_a_year_is_refused_and_changes_nothing(client, db):
    programme.programme_settings_update(return_window_days=14)
    client.force_login(factories.staff_in("Marketing"))
    response = client.post(reverse("admin:rewards_programmesettings_change", args=[1]), {"return_window_days": "400"})
    assert response.status_code == 200 and response.context["adminform"].form.errors["return_window_days"]
    assert programme.return_window_days() == 14


def test_the_purchase_path_reads_the_window_without_a_query(db, django_assert_num_queries):
    programme.programme_settings_update(return_window_days=7)
    assert programme.return_window_days() == 7  # loads the per-process copy
    with django_assert_num_queries(0):
        for _ in range(100):
            assert programme.return_window_days() == 7


def test_a_change_reaches_other_processes_through_the_shared_stamp(db):
    programme.programme_settings_update(return_window_days=7)
    assert programme.return_window_days() == 7
    ProgrammeSettings.objects.filter(pk=1).update(return_window_days=3)  # as another process's save would
    assert programme.return_window_days() == 7  # still this process's copy
    programme.VERSION.bump()  # the other process's save replaced the stamp
    assert programme.return_window_days() == 3


def test_the_programme_group_of_the_sidebar_holds_the_settings(db):
    from django.test import RequestFactory

    from loyalty_site.navigation import sidebar_navigation

    request = RequestFactory().get("/admin/")
    request.user = factories.staff_in("Marketing")
    groups = {str(group["title"]): [item["link"] for item in group["items"]] for group in sidebar_navigation(request)}
    assert reverse("admin:rewards_programmesettings_changelist") in groups["Programme"]
