"""Portal pages: what the member sees on the dashboard, activity, rewards, profile and terms."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from members.models import ConsentRecord, Member
from members.services import member_link_or_enrol
from rewards.ledger import points_adjust, points_credit
from rewards.models import PointEntry, Redemption
from rewards.purchases import purchase_record
from rewards.vouchers import redemption_create
from tests import factories


def en(name: str, *args) -> str:
    """The English URL of a page: assertions on wording use the English source texts, which do
    not change when the German translations arrive."""
    with translation.override("en"):
        return reverse(name, args=args)


@pytest.fixture
def portal_member(tiers):
    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    Member.objects.filter(pk=member.pk).update(first_name="Erika", last_name="Muster")
    member.refresh_from_db()
    return member


@pytest.fixture
def signed_in(client, portal_member):
    client.force_login(portal_member.user)
    return client


def test_dashboard_shows_balance_tier_progress_card_and_latest_activity(signed_in, portal_member, partner,
                                                                       base_rule):
    purchase_record(member_id=portal_member.pk, partner=partner, order_reference="BON-1", amount=Decimal("620.00"))
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert "Hello Erika" in html
    assert 'data-testid="balance">620<' in html
    assert 'data-testid="tier">Silver<' in html
    assert "Gold" in html and "1,380" in html  # 2,000 - 620 qualifying points to the next tier
    assert 'role="progressbar"' in html and 'aria-valuenow="8"' in html  # (620-500)/(2000-500)
    assert portal_member.card_number in html.replace(" ", "")
    assert 'class="qr"' in html and 'class="barcode"' in html
    assert "Purchase BON-1" in html


def test_dashboard_warns_about_points_expiring_soon_with_their_date(signed_in, portal_member, settings):
    settings.LOYALTY_POINTS_EXPIRY_MONTHS = 1
    settings.LOYALTY_EXPIRY_WARNING_DAYS = 40
    points_credit(member_id=portal_member.pk, points=75, reason="Willkommensbonus")
    entry = PointEntry.objects.get(member=portal_member)
    html = signed_in.get(en("portal:dashboard")).content.decode()
    day = timezone.localtime(entry.expires_at).date()
    assert "75 points expire" in html
    assert f"{day.day} {day.strftime('%b %Y')}" in html  # 4 Dec 2026, not the en locale's 12/04/2026


def _credit_expiring_in(member, days: list[int], points: int = 10) -> None:
    """Credits that expire in so many days each (ledger rows written directly: the ledger service
    dates expiry by the programme's months, and the expiry formula reads only the rows)."""
    for offset in days:
        factories.PointEntryFactory(member=member, kind=PointEntry.Kind.BONUS, points=points,
                                    reason=f"Bonus {offset}", expires_at=timezone.now() + timedelta(days=offset))


def test_dashboard_shows_expiring_points_with_german_dates(signed_in, portal_member, settings):
    settings.LOYALTY_EXPIRY_WARNING_DAYS = 30
    _credit_expiring_in(portal_member, [3], points=75)
    day = timezone.localtime(timezone.now() + timedelta(days=3)).date()
    until = timezone.localtime(timezone.now() + timedelta(days=30)).date()
    with translation.override("de"):
        html = signed_in.get(reverse("portal:dashboard")).content.decode()
    # The wording comes from the catalogue (compiled or not); the dates are German either way.
    assert f"{until:%d.%m.%Y}" in html.split('class="expiring"')[1].split("</p>")[0]
    assert f"{day:%d.%m.%Y}" in html.split('class="expiring__list"')[1].split("</ul>")[0]


def test_dashboard_shows_nothing_about_expiry_when_nothing_expires_in_the_window(signed_in, portal_member,
                                                                                 settings):
    settings.LOYALTY_EXPIRY_WARNING_DAYS = 30
    _credit_expiring_in(portal_member, [45], points=75)  # after the window: not "soon"
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert 'class="expiring"' not in html and "expire by" not in html


def test_dashboard_expiry_schedule_costs_no_query_per_expiry_date(signed_in, portal_member, settings,
                                                                  django_assert_max_num_queries):
    settings.LOYALTY_EXPIRY_WARNING_DAYS = 30
    _credit_expiring_in(portal_member, [2])
    with CaptureQueriesContext(connection) as one_date:
        signed_in.get(en("portal:dashboard"))
    _credit_expiring_in(portal_member, [4, 6, 8, 10, 12])
    with django_assert_max_num_queries(len(one_date.captured_queries)):
        html = signed_in.get(en("portal:dashboard")).content.decode()
    assert "60 points expire by" in html and html.count("10 on ") == 6


def test_dashboard_asks_for_consent_once_with_nothing_ticked(signed_in, portal_member):
    html = signed_in.get(reverse("portal:dashboard")).content.decode()
    assert 'name="email"' in html and 'name="sms"' in html and 'name="personalised"' in html
    assert 'name="push"' in html
    assert "checked" not in html.split('class="stack consent-form"')[1].split("</form>")[0]
    signed_in.post(reverse("portal:preferences"), {"next": "dashboard"})
    assert ConsentRecord.objects.filter(member=portal_member, granted=False).count() == 4
    html = signed_in.get(reverse("portal:dashboard")).content.decode()
    assert "consent-form" not in html


def test_activity_explains_purchases_vouchers_and_corrections(signed_in, portal_member, partner, base_rule):
    factories.EarningRuleFactory(name_de="Doppelte Punkte", effect="multiplier", value=2, priority=50)
    store = factories.StoreFactory(partner=partner, name="Berlin Mitte")
    purchase_record(member_id=portal_member.pk, partner=partner, order_reference="BON-7", amount=Decimal("42.00"),
                    store=store)
    reward = factories.RewardFactory(name_de="Gratis Kaffee", name_en="Free coffee", points_cost=50)
    voucher = redemption_create(member_id=portal_member.pk, reward_id=reward.pk)
    points_adjust(member_id=portal_member.pk, points=5, reason="Kulanz wegen Wartezeit", staff_user=None)
    html = signed_in.get(en("portal:activity")).content.decode()
    assert "Purchase BON-7" in html and "Berlin Mitte" in html and "42.00 EUR" in html
    assert "1 Punkt pro Euro" in html and "Doppelte Punkte" in html  # the breakdown (rules named in German only)
    assert "Voucher: Free coffee" in html and en("portal:voucher", voucher.pk) in html
    assert "Kulanz wegen Wartezeit" in html
    assert "+84" in html and "−50" in html


def test_activity_is_paginated_and_htmx_gets_only_the_next_rows(signed_in, portal_member):
    for number in range(25):
        points_credit(member_id=portal_member.pk, points=number + 1, reason=f"Bonus {number}")
    first = signed_in.get(reverse("portal:activity")).content.decode()
    assert "Bonus 24" in first and "Bonus 4" not in first and "?page=2" in first
    fragment = signed_in.get(reverse("portal:activity") + "?page=2", HTTP_HX_REQUEST="true").content.decode()
    assert "Bonus 4" in fragment and "Bonus 0" in fragment
    assert "<html" not in fragment and "site-header" not in fragment


def test_catalogue_lists_what_i_can_afford_first_and_what_my_tier_allows(signed_in, portal_member, tiers):
    points_credit(member_id=portal_member.pk, points=300, reason="Start")
    cheap = factories.RewardFactory(name_en="Free coffee", points_cost=150)
    factories.RewardFactory(name_en="20 € voucher", points_cost=2000)
    factories.RewardFactory(name_en="VIP evening", points_cost=100, min_tier=tiers[2])
    html = signed_in.get(en("portal:rewards")).content.decode()
    affordable, later = html.split('id="later-title"')
    assert "Free coffee" in affordable and en("portal:redeem", cheap.pk) in affordable
    assert "20 € voucher" in later and "1700 more points" in later
    assert "VIP evening" in later and "needs the Gold tier" in later


def test_redeeming_asks_for_confirmation_then_issues_the_voucher(signed_in, portal_member):
    points_credit(member_id=portal_member.pk, points=300, reason="Start")
    reward = factories.RewardFactory(name_en="Free coffee", points_cost=150)
    url = en("portal:redeem", reward.pk)
    page = signed_in.get(url).content.decode()
    assert "Free coffee" in page and "150 points" in page and "150 points left" in page and "Yes, redeem" in page
    fragment = signed_in.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and 'action="' + url + '"' in fragment
    assert not Redemption.objects.exists()  # looking is not redeeming

    response = signed_in.post(url)
    voucher = Redemption.objects.get(member=portal_member)
    assert response["Location"] == en("portal:voucher", voucher.pk)
    portal_member.refresh_from_db()
    assert portal_member.points_balance == 150
    html = signed_in.get(response["Location"]).content.decode()
    assert voucher.display_code in html and 'class="qr"' in html


def test_redeeming_without_enough_points_explains_why(signed_in, portal_member):
    reward = factories.RewardFactory(name_de="Gratis Kaffee", points_cost=150)
    response = signed_in.post(en("portal:redeem", reward.pk), follow=True)
    assert not Redemption.objects.exists()
    assert "Not enough points: 0 available, 150 needed." in response.content.decode()


def test_rewards_outside_the_catalogue_cannot_be_redeemed_in_the_portal(signed_in, portal_member):
    points_credit(member_id=portal_member.pk, points=1000, reason="Start")
    hidden = factories.RewardFactory(in_catalogue=False)
    assert signed_in.post(reverse("portal:redeem", args=[hidden.pk])).status_code == 404
    assert not Redemption.objects.exists()


def test_my_vouchers_show_code_status_and_expiry(signed_in, portal_member):
    open_one = factories.RedemptionFactory(member=portal_member, reward__name_en="Free coffee")
    factories.RedemptionFactory(member=portal_member, reward__name_en="Free delivery", status=Redemption.Status.USED,
                                used_at=timezone.now(), used_by_partner=factories.PartnerFactory())
    month_ago = timezone.now() - timedelta(days=31)
    factories.RedemptionFactory(member=portal_member, reward__name_en="Old one", issued_at=month_ago,
                                expires_at=month_ago + timedelta(days=30))
    html = signed_in.get(en("portal:vouchers")).content.decode()
    ready, closed = html.split('id="closed-title"')
    assert "Free coffee" in ready and open_one.display_code in ready and "valid until" in ready
    assert "Free delivery" in closed and "status--used" in closed
    assert "Old one" in closed and "status--expired" in closed


def test_profile_update_goes_through_the_service_and_switches_the_language(signed_in, portal_member):
    response = signed_in.post(reverse("portal:profile"), {
        "salutation": "ms", "first_name": "Erika", "last_name": "Musterfrau", "phone": "+49 30 1234567",
        "birth_date": "1980-05-17", "street": "Heidestraße 17", "postal_code": "51147", "city": "Köln",
        "country": "DE", "language": "en",
    })
    assert response.status_code == 302
    assert response["Location"] == "/en/konto/profil/"
    assert response.cookies["django_language"].value == "en"
    portal_member.refresh_from_db()
    assert (portal_member.last_name, portal_member.city, portal_member.language) == ("Musterfrau", "Köln", "en")
    assert str(portal_member.birth_date) == "1980-05-17"


def test_profile_rejects_a_birth_date_in_the_future(signed_in, portal_member):
    response = signed_in.post(en("portal:profile"), {
        "first_name": "Erika", "last_name": "Muster", "birth_date": "2999-01-01", "country": "DE",
        "language": "de"})
    assert response.status_code == 200
    assert "The birth date lies in the future." in response.content.decode()
    portal_member.refresh_from_db()
    assert portal_member.birth_date is None


def test_email_marketing_needs_a_confirmed_double_opt_in(signed_in, portal_member,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(reverse("portal:preferences"), {"email": "on", "sms": "on"}, REMOTE_ADDR="203.0.113.9")
    email_record = ConsentRecord.objects.get(member=portal_member, purpose="email")
    assert email_record.granted and email_record.confirmed_at is None and not email_record.is_effective
    assert email_record.ip_address == "203.0.113.9" and email_record.source == "portal"
    assert email_record.text_version == "2026-01"
    assert ConsentRecord.objects.get(member=portal_member, purpose="sms").is_effective
    assert ConsentRecord.objects.get(member=portal_member, purpose="personalised").granted is False

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["erika@example.org"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/newsletter/bestaetigen/" in line)
    path = link[link.index("/newsletter"):]
    assert signed_in.get(path).status_code == 200  # a mail scanner opening the link confirms nothing
    assert ConsentRecord.objects.filter(member=portal_member, purpose="email").count() == 1
    signed_in.post(path)
    from members.services import consent_given

    assert consent_given(portal_member, "email")
    assert signed_in.post(path).status_code == 404  # used up


def test_withdrawing_consent_appends_a_record_and_keeps_the_history(signed_in, portal_member):
    signed_in.post(reverse("portal:preferences"), {"sms": "on"})
    signed_in.post(reverse("portal:preferences"), {})
    sms = list(ConsentRecord.objects.filter(member=portal_member, purpose="sms").order_by("id"))
    assert [record.granted for record in sms] == [True, False]
    html = signed_in.get(en("portal:profile")).content.decode()
    history = html.split("History of my choices")[1]
    assert history.count("marketing SMS") == 2 and "withdrawn / declined" in history


def test_terms_are_generated_from_the_live_configuration(client, tiers, base_rule, settings):
    settings.LOYALTY_POINTS_EXPIRY_MONTHS = 18
    factories.EarningRuleFactory(name_de="Wochenende doppelt", effect="multiplier", value=2, weekdays="5,6")
    factories.EarningRuleFactory(name_de="Abgelaufen", effect="bonus", value=100,
                                 valid_until=timezone.now() - timedelta(days=1))
    factories.RewardFactory(name_en="VIP evening", min_tier=tiers[2], voucher_valid_days=30)
    html = client.get(en("portal:terms")).content.decode()
    assert "1 point per euro or franc spent" in html
    assert "Wochenende doppelt" in html and "2× the base points" in html and "Saturday, Sunday" in html
    assert "Abgelaufen" not in html
    assert "Points expire 18 months after they were earned." in html
    for tier in tiers:
        assert tier.name_en in html
    assert "×1.25" in html and "VIP" in html and "valid for 30 days" in html


def test_pages_are_german_by_default(signed_in, portal_member, client):
    for name in ("portal:dashboard", "portal:terms"):
        url = reverse(name)
        assert not url.startswith("/en/")
        assert '<html lang="de">' in signed_in.get(url).content.decode()
    from django.test import Client

    assert '<html lang="de">' in Client().get(reverse("account_login")).content.decode()


def test_every_page_has_an_english_version(signed_in, portal_member):
    with translation.override("en"):
        urls = [reverse(name) for name in ("portal:dashboard", "portal:activity", "portal:rewards",
                                           "portal:vouchers", "portal:profile", "portal:privacy", "portal:terms")]
    for url in urls:
        html = signed_in.get(url).content.decode()
        assert url.startswith("/en/") and 'lang="en"' in html, url
        assert 'action="/i18n/setlang/"' in html


def test_forms_are_csrf_protected(portal_member):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(portal_member.user)
    reward = factories.RewardFactory()
    for url in (reverse("portal:redeem", args=[reward.pk]), reverse("portal:preferences"),
                reverse("portal:profile"), reverse("portal:delete")):
        assert client.post(url, {}).status_code == 403, url


def test_a_blocked_member_sees_a_notice_and_cannot_redeem(signed_in, portal_member):
    points_credit(member_id=portal_member.pk, points=500, reason="Start")
    Member.objects.filter(pk=portal_member.pk).update(status=Member.Status.BLOCKED)
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert "Your account is blocked" in html
    reward = factories.RewardFactory(points_cost=100)
    signed_in.post(reverse("portal:redeem", args=[reward.pk]))
    assert not Redemption.objects.exists()


def test_profile_ignores_fields_that_try_to_set_protected_ones(signed_in, portal_member):
    signed_in.post(reverse("portal:profile"), {
        "first_name": "Erika", "last_name": "Muster", "country": "DE", "language": "de",
        "points_balance": "999999", "tier": "1", "status": "active", "is_staff": "on", "is_superuser": "on",
        "email": "attacker@example.org", "customer_number": "K000000001"})
    portal_member.refresh_from_db()
    user = portal_member.user
    user.refresh_from_db()
    assert portal_member.points_balance == 0 and portal_member.customer_number != "K000000001"
    assert portal_member.email != "attacker@example.org"
    assert not user.is_staff and not user.is_superuser
