"""The console for segments and campaigns: conditions validated against the whitelist, the live
audience, results with uplift, and actions behind a confirmation that call the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import raffles, services
from campaigns.models import Campaign, Message, Segment
from tests import factories


@pytest.fixture
def superuser(db):
    return factories.UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def recorded_tasks(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args, **kwargs: queued.append((task.name, args)))
    return queued


def consenting(**fields):
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    return member


def inline_data(rows: list[dict], prefix: str = "conditions") -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000"}
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def test_a_segment_is_built_from_condition_rows_and_shows_its_audience(staff_client, tiers):
    consenting(country="AT", first_name="Anton")
    consenting(country="DE")
    response = staff_client.post(reverse("admin:campaigns_segment_add"), {
        "name": "Österreich", "description": "",
        **inline_data([{"group": "1", "field": "country", "operator": "in", "value": "AT", "days": ""}]),
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    segment = Segment.objects.get(name="Österreich")
    page = staff_client.get(reverse("admin:campaigns_segment_change", args=[segment.pk])).content.decode()
    assert 'data-testid="audience"' in page
    assert "1 active member" in page and "Anton" in page
    assert "Conditions you can use" in page


def test_a_condition_outside_the_whitelist_is_refused_with_a_message(staff_client, tiers):
    response = staff_client.post(reverse("admin:campaigns_segment_add"), {
        "name": "Kaputt", "description": "",
        **inline_data([{"group": "1", "field": "tier", "operator": "in", "value": "Diamant", "days": ""}]),
    })
    assert response.status_code == 200
    assert "unknown tier Diamant" in response.content.decode()
    assert not Segment.objects.filter(name="Kaputt").exists()
    response = staff_client.post(reverse("admin:campaigns_segment_add"), {
        "name": "Kaputt", "description": "",
        **inline_data([{"group": "1", "field": "email; DROP TABLE", "operator": "in", "value": "x", "days": ""}]),
    })
    assert response.status_code == 200 and not Segment.objects.filter(name="Kaputt").exists()


def test_a_campaign_with_a_broken_template_cannot_be_saved(staff_client, tiers):
    response = staff_client.post(reverse("admin:campaigns_campaign_add"), {
        "name": "Sommer", "kind": "broadcast", "channel": "email", "holdout_percent": "10",
        "attribution_days": "14", "entry_points": "0", "winners_count": "1",
        **inline_data([{"name": "A", "weight": "1", "subject_de": "Hallo", "body_de": "{% include 'base.html' %}",
                        "subject_en": "", "body_en": ""}], prefix="variants"),
    })
    assert response.status_code == 200
    assert not Campaign.objects.filter(name="Sommer").exists()


def test_the_campaign_page_shows_progress_results_and_a_preview(staff_client, tiers):
    for _ in range(6):
        consenting()
    campaign = factories.CampaignFactory(holdout_percent=30)
    factories.VariantFactory(campaign=campaign, name="A", body_de="Hallo {{ first_name }}!")
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    for testid in ("progress", "results", "previews"):
        assert f'data-testid="{testid}"' in page
    assert "Hallo Erika!" in page
    listing = staff_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert campaign.name in listing
    messages = staff_client.get(reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}")
    assert messages.status_code == 200


def test_starting_a_campaign_needs_a_confirmation_post(staff_client, tiers, recorded_tasks):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    url = reverse("admin:campaigns_campaign_do", args=[campaign.pk, "launch"])
    assert staff_client.get(url).status_code == 200
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT  # a GET changes nothing
    assert staff_client.post(url).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert recorded_tasks == [("campaigns.tasks.prepare_campaign", (campaign.pk,))]
    response = staff_client.post(url, follow=True)  # a second start is refused with a message
    assert "not possible" in response.content.decode()


def test_a_started_campaign_is_read_only_but_can_be_paused(staff_client, tiers, recorded_tasks):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    services.campaign_launch(campaign_id=campaign.pk)
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'name="holdout_percent"' not in page
    staff_client.post(reverse("admin:campaigns_campaign_do", args=[campaign.pk, "pause"]))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_drawing_a_raffle_from_the_console_reveals_the_committed_seed(staff_client, tiers):
    member = consenting()
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, winners_count=1,
                                         entry_deadline=timezone.now() + timedelta(days=1))
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    campaign.refresh_from_db()
    committed = campaign.draw_seed
    Campaign.objects.filter(pk=campaign.pk).update(entry_deadline=timezone.now() - timedelta(minutes=1))
    staff_client.post(reverse("admin:campaigns_campaign_do", args=[campaign.pk, "draw"]), {"seed": "announced-42"})
    campaign.refresh_from_db()
    assert campaign.drawn_at is not None and campaign.draw_seed == committed  # a typed seed is no seed
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "Re-running the draw with this seed gives the same winners." in page


def test_marketing_staff_may_send_but_support_may_not(client, tiers, recorded_tasks):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    url = reverse("admin:campaigns_campaign_do", args=[campaign.pk, "launch"])
    support = factories.staff_in("Support")
    client.force_login(support)
    assert client.post(url).status_code == 403
    marketing = factories.staff_in("Marketing")
    client.force_login(marketing)
    assert client.post(url).status_code == 302
    assert Message.objects.count() == 0  # sending happens in the worker
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


# --- The campaign editor (#23) -------------------------------------------------------------------


def test_the_variant_fields_offer_a_placeholder_picker_with_labels_in_words(staff_client, tiers):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "console/placeholder_picker.js" in page
    # One picker per text field (subject and text, German and English) of the variant, and as many
    # in the template of "Add another variant".
    assert page.count('class="placeholder-picker') == 8
    for code, label in (("{{ first_name }}", "First name"), ("{{ points_expiring }}", "Expiring points"),
                        ("{{ raffle_url }}", "Raffle entry link")):
        assert f'data-placeholder="{code}"' in page and label in page


def test_every_placeholder_of_the_whitelist_has_a_label():
    from campaigns import rendering

    assert set(rendering.PLACEHOLDER_LABELS) == set(rendering.CONTEXT_HELP)
    assert ("{{ first_name }}", "First name") in rendering.placeholders()


def test_a_test_send_goes_to_the_staff_users_own_address_only(staff_client, superuser, tiers, mailoutbox):
    consenting()  # a member of the audience: must get nothing
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign, name="A")
    factories.VariantFactory(campaign=campaign, name="B", body_en="")
    url = reverse("admin:campaigns_campaign_do", args=[campaign.pk, "test_send"])
    page = staff_client.get(url).content.decode()
    assert superuser.email in page and not mailoutbox  # a GET only asks
    response = staff_client.post(url, follow=True)
    assert "3 test e-mails sent to" in response.content.decode()
    assert [email.to for email in mailoutbox] == [[superuser.email]] * 3  # A in de and en, B in de
    subjects = sorted(email.subject for email in mailoutbox)
    assert subjects[0].startswith("[Test, variant A, DE] Hallo Erika")
    assert "Erika" in mailoutbox[0].body
    assert Message.objects.count() == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_test_send_without_an_address_says_so_and_sends_nothing(client, tiers, mailoutbox):
    user = factories.UserFactory(is_staff=True, is_superuser=True, email="")
    client.force_login(user)
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    response = client.post(reverse("admin:campaigns_campaign_do", args=[campaign.pk, "test_send"]), follow=True)
    assert "has no e-mail address" in response.content.decode()
    assert not mailoutbox


def test_a_test_send_needs_the_change_permission(client, tiers, mailoutbox):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    client.force_login(factories.staff_in("Support"))
    assert client.post(reverse("admin:campaigns_campaign_do", args=[campaign.pk, "test_send"])).status_code == 403
    assert not mailoutbox


def test_the_preview_shows_subject_and_preview_line_in_both_languages(staff_client, tiers):
    consenting()
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign, name="A", subject_de="Hallo {{ first_name }}",
                             body_de="\n\nIhre {{ balance }} Punkte warten.\nZweite Zeile",
                             subject_en="Hello {{ first_name }}", body_en="Your points are waiting.\nMore")
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    german = page.split('data-testid="preview-A-de"')[1].split('data-testid="preview-A-en"')[0]
    assert '<dd class="inline" data-testid="preview-subject">Hallo Erika</dd>' in german
    assert 'data-testid="preview-line">Ihre' in german and "Punkte warten.</dd>" in german
    english = page.split('data-testid="preview-A-en"')[1]
    assert 'data-testid="preview-subject">Hello Erika</dd>' in english
    assert 'data-testid="preview-line">Your points are waiting.</dd>' in english


def test_a_finished_campaign_is_read_only_with_its_results_before_the_form(staff_client, tiers):
    for _ in range(4):
        consenting()
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign, name="A")
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="name"' not in page and 'name="_save"' not in page
    assert 'name="variants-0-body_de"' not in page
    for action in ("launch-action", "pause-action", "resume-action", "stop-action", "test-send-action"):
        assert action not in page
    assert page.index('data-testid="results"') < page.index('id="campaign_form"')
    response = staff_client.post(url, {"name": "Umbenannt"})
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name != "Umbenannt"


def test_a_draft_offers_start_and_test_send_but_not_pause(staff_client, tiers):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "launch-action" in page and "test-send-action" in page
    assert "pause-action" not in page and "resume-action" not in page


def test_variants_are_compared_with_each_other_with_a_confidence_interval():
    from decimal import Decimal

    from campaigns.experiment import uplift
    from campaigns.selectors import Arm, variants_compared

    arms = [Arm("A", 1, 100, 10, Decimal(0)), Arm("B", 2, 100, 20, Decimal(0)), Arm("C", 3, 50, 5, Decimal(0))]
    compared = variants_compared(arms)
    assert [(c.label, c.baseline) for c in compared] == [("B", "A"), ("C", "A"), ("C", "B")]
    assert compared[0].uplift == uplift(conversions=20, size=100, control_conversions=10, control_size=100)
    assert round(compared[0].uplift.points[0], 1) == 10.0


def test_the_results_show_variant_a_against_b(staff_client, tiers):
    for _ in range(16):
        consenting()
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign, name="A")
    factories.VariantFactory(campaign=campaign, name="B")
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'data-testid="comparisons"' in page
    assert "Variant B against A" in page
