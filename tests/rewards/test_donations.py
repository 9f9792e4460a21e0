"""Donation rewards as real donations: redeeming one records a donation (no voucher, no code, no
expiry), the console totals per cause and period, the payout export, reversal, the member's data
export and erasure."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members.erasure import member_erase
from members.gdpr import member_export_data
from members.merge import member_merge
from rewards.donations import (
    Period,
    causes_with_totals,
    donation_cancel,
    member_donated_total,
    month_start,
    totals_per_cause_and_month,
)
from rewards.errors import DonationNotCancellable, InsufficientPoints, RewardUnavailable, VoucherInvalid
from rewards.ledger import points_adjust
from rewards.models import Donation, DonationCause, PointEntry, Redemption, Reward
from rewards.selectors import explain_entries, ledger_entries, ledger_mismatches, vouchers_of
from rewards.vouchers import (
    redemption_cancel,
    redemption_create,
    redemptions_expire_due,
    voucher_validate,
)
from tests import factories
from transfers.models import ExportLog


def give(member, points):
    points_adjust(member_id=member.pk, points=points, reason="Test", staff_user=None)
    member.refresh_from_db()


def balance(member) -> int:
    member.refresh_from_db()
    return member.points_balance


def cause(**fields) -> DonationCause:
    return DonationCause.objects.create(**{"name_de": "Bäume für den Bergwald", "name_en": "Trees for the forest",
                                           "organisation": "Bergwaldprojekt e. V.", **fields})


def donation_reward(the_cause=None, **fields) -> Reward:
    return factories.RewardFactory(**{"kind": Reward.Kind.DONATION, "cause": the_cause or cause(),
                                      "points_cost": 200, "value": Decimal("2.00"), "currency": "EUR", **fields})


@pytest.fixture
def trees(db):
    return cause()


@pytest.fixture
def food_bank(db):
    return cause(name_de="Tafel", name_en="Food bank", organisation="Tafel e. V.")


# --- Redeeming ---------------------------------------------------------------------------------

def test_redeeming_a_donation_reward_records_a_donation_not_a_voucher(member, trees):
    give(member, 500)
    reward = donation_reward(trees, stock=10)
    redemption = redemption_create(member_id=member.pk, reward_id=reward.pk)
    redemption.refresh_from_db()
    assert (redemption.status, redemption.code, redemption.expires_at) == (Redemption.Status.DONATED, None, None)
    donation = Donation.objects.get()
    assert (donation.member, donation.cause, donation.points, donation.amount, donation.redemption) == (
        member, trees, 200, Decimal("2.00"), redemption)
    assert donation.cancelled_at is None
    entry = PointEntry.objects.get(member=member, kind=PointEntry.Kind.REDEEM)
    assert (entry.points, entry.source, entry.reference) == (-200, "donation", str(redemption.pk))
    reward.refresh_from_db()
    assert (balance(member), reward.stock) == (300, 9)
    assert ledger_mismatches() == []


def test_a_donation_never_appears_among_vouchers_and_never_expires(member, trees, partner):
    give(member, 500)
    donation = redemption_create(member_id=member.pk, reward_id=donation_reward(trees).pk)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory(points_cost=50).pk)
    assert list(vouchers_of(member)) == [voucher]
    # The expiry job, run far past any voucher's date, expires the voucher and leaves the donation.
    assert redemptions_expire_due(now=timezone.now() + timedelta(days=10_000)) == 1
    donation.refresh_from_db()
    assert donation.status == Redemption.Status.DONATED
    with pytest.raises(VoucherInvalid):  # nothing for a till to take: it has no code
        voucher_validate(code=str(donation.pk), partner=partner)


def test_a_donation_is_not_cancellable_as_a_voucher(member, trees):
    give(member, 500)
    donation = redemption_create(member_id=member.pk, reward_id=donation_reward(trees).pk)
    from rewards.errors import VoucherNotCancellable

    with pytest.raises(VoucherNotCancellable):
        redemption_cancel(redemption_id=donation.pk)
    assert balance(member) == 300


def test_a_donation_with_too_few_points_changes_nothing(member, trees):
    give(member, 150)
    reward = donation_reward(trees, stock=3)
    with pytest.raises(InsufficientPoints):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    reward.refresh_from_db()
    assert (balance(member), reward.stock) == (150, 3)
    assert not Donation.objects.exists() and not Redemption.objects.exists()
    assert PointEntry.objects.filter(kind=PointEntry.Kind.REDEEM).count() == 0


def test_a_cause_switched_off_takes_no_donations_and_leaves_the_catalogue(member, trees):
    give(member, 500)
    reward = donation_reward(trees)
    DonationCause.objects.filter(pk=trees.pk).update(active=False)
    with pytest.raises(RewardUnavailable):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    from rewards.vouchers import catalogue_for

    assert reward.pk not in [row.pk for row, _reason in catalogue_for(member)]


def test_the_limit_per_member_counts_donations(member, trees):
    give(member, 1000)
    reward = donation_reward(trees, limit_per_member=1)
    redemption_create(member_id=member.pk, reward_id=reward.pk)
    with pytest.raises(RewardUnavailable):
        redemption_create(member_id=member.pk, reward_id=reward.pk)


def test_the_database_refuses_a_donation_reward_without_cause_or_euros(trees):
    for fields in ({"cause": None}, {"value": None}, {"value": Decimal("0")}, {"currency": "CHF"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Reward.objects.create(**{"kind": "donation", "name_de": "Spende", "points_cost": 100, "cause": trees,
                                     "value": Decimal("1"), "currency": "EUR", **fields})
    with pytest.raises(IntegrityError), transaction.atomic():  # a voucher names no cause
        Reward.objects.create(kind="amount", name_de="5 €", points_cost=100, value=5, currency="EUR", cause=trees)


def test_the_database_refuses_a_donated_redemption_with_a_code(member, trees):
    reward = donation_reward(trees)
    with pytest.raises(IntegrityError), transaction.atomic():
        Redemption.objects.create(member=member, reward=reward, points=0, code="ABCDEFGH",
                                  status=Redemption.Status.DONATED, expires_at=timezone.now() + timedelta(days=1))
    with pytest.raises(IntegrityError), transaction.atomic():  # a voucher without code or date
        Redemption.objects.create(member=member, reward=reward, points=0, code=None, expires_at=None)


def test_the_reward_form_rules_explain_what_a_donation_needs(trees):
    reward = Reward(kind=Reward.Kind.DONATION, name_de="Spende", points_cost=100)
    with pytest.raises(ValidationError) as refused:
        reward.full_clean()
    assert {"cause", "value"} <= set(refused.value.message_dict)
    reward.cause, reward.value = trees, Decimal("3.00")
    reward.full_clean()
    assert reward.currency == "EUR"


def test_merging_members_moves_the_donations(tiers, trees):
    survivor, duplicate = factories.enrolled_member(), factories.enrolled_member()
    give(duplicate, 300)
    redemption_create(member_id=duplicate.pk, reward_id=donation_reward(trees).pk)
    member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk, staff_user=None, reason="Test")
    assert Donation.objects.get().member_id == survivor.pk
    assert member_donated_total(survivor) == Decimal("2.00")


# --- Reversal ------------------------------------------------------------------------------------

def test_staff_cancel_a_donation_of_the_running_month_once(member, trees):
    give(member, 500)
    reward = donation_reward(trees, stock=5)
    redemption = redemption_create(member_id=member.pk, reward_id=reward.pk)
    donation = donation_cancel(donation_id=redemption.donation.pk)
    assert donation.cancelled_at is not None
    redemption.refresh_from_db()
    reward.refresh_from_db()
    assert (redemption.status, balance(member), reward.stock) == (Redemption.Status.CANCELLED, 500, 5)
    refund = PointEntry.objects.get(kind=PointEntry.Kind.REFUND)
    assert (refund.source, refund.reference, refund.points) == ("donation-refund", str(redemption.pk), 200)
    with pytest.raises(DonationNotCancellable):
        donation_cancel(donation_id=donation.pk)
    assert causes_with_totals().get(pk=trees.pk).donation_count == 0
    assert balance(member) == 500 and ledger_mismatches() == []


def test_a_donation_of_a_month_that_has_ended_is_not_cancelled(member, trees):
    give(member, 500)
    redemption = redemption_create(member_id=member.pk, reward_id=donation_reward(trees).pk)
    Donation.objects.update(created_at=month_start(timezone.now()) - timedelta(minutes=1))
    with pytest.raises(DonationNotCancellable):
        donation_cancel(donation_id=redemption.donation.pk)
    assert balance(member) == 300


# --- Totals --------------------------------------------------------------------------------------

def _donate(member, reward, at=None):
    redemption = redemption_create(member_id=member.pk, reward_id=reward.pk)
    if at is not None:
        Donation.objects.filter(redemption=redemption).update(created_at=at)
    return redemption


def test_totals_per_cause_count_points_euros_and_donations_in_the_period(tiers, trees, food_bank):
    tree, bank = donation_reward(trees, points_cost=500, value=Decimal("5.00")), donation_reward(food_bank)
    now = timezone.now()
    long_ago = now - timedelta(days=400)
    donors = [factories.enrolled_member() for _ in range(3)]
    for donor in donors:
        give(donor, 2000)
    _donate(donors[0], tree)
    _donate(donors[1], tree)
    _donate(donors[2], bank, at=long_ago)
    _donate(donors[2], bank)
    totals = {row.pk: (row.donation_count, row.donated_points, row.donated_amount)
              for row in causes_with_totals()}
    assert totals == {trees.pk: (2, 1000, Decimal("10.00")), food_bank.pk: (2, 400, Decimal("4.00"))}
    recent = {row.pk: (row.donation_count, row.donated_amount)
              for row in causes_with_totals(period=Period(start=now - timedelta(days=30)))}
    assert recent == {trees.pk: (2, Decimal("10.00")), food_bank.pk: (1, Decimal("2.00"))}
    back_then = {row.pk: row.donation_count
                 for row in causes_with_totals(period=Period(end=now - timedelta(days=30)))}
    assert back_then == {trees.pk: 0, food_bank.pk: 1}


def test_the_totals_are_one_query_whatever_the_number_of_causes(tiers):
    donor = factories.enrolled_member()
    give(donor, 10_000)
    for index in range(5):
        _donate(donor, donation_reward(cause(name_de=f"Zweck {index}")))
    with CaptureQueriesContext(connection) as queries:
        rows = list(causes_with_totals())
        assert [row.donation_count for row in rows] == [1] * 5
    assert len(queries) == 1


def test_the_totals_per_month_group_by_cause_and_calendar_month(tiers, trees, food_bank):
    donor = factories.enrolled_member()
    give(donor, 5000)
    this_month = month_start(timezone.now())
    previous = month_start(this_month - timedelta(days=1))
    tree = donation_reward(trees)
    _donate(donor, tree, at=previous + timedelta(hours=1))
    _donate(donor, tree, at=this_month + timedelta(minutes=5))
    _donate(donor, tree, at=this_month + timedelta(minutes=10))
    _donate(donor, donation_reward(food_bank), at=this_month + timedelta(minutes=5))
    rows = [(row["cause_id"], timezone.localtime(row["month"]).strftime("%Y-%m"), row["donation_count"],
             row["donated_amount"]) for row in totals_per_cause_and_month()]
    assert rows == [
        (trees.pk, f"{previous:%Y-%m}", 1, Decimal("2.00")),
        (trees.pk, f"{this_month:%Y-%m}", 2, Decimal("4.00")),
        (food_bank.pk, f"{this_month:%Y-%m}", 1, Decimal("2.00")),
    ]


# --- Console -------------------------------------------------------------------------------------

def _changelist(client, query: str = ""):
    return client.get(reverse("admin:rewards_donationcause_changelist") + query)


def test_the_console_shows_the_total_per_cause_for_the_chosen_period(client, tiers, trees, food_bank):
    donor = factories.enrolled_member()
    give(donor, 2000)
    _donate(donor, donation_reward(trees, points_cost=500, value=Decimal("5.00")))
    _donate(donor, donation_reward(food_bank), at=timezone.now() - timedelta(days=800))
    client.force_login(factories.staff_in("Finance"))
    page = _changelist(client)
    assert page.status_code == 200
    rows = {cause.pk: (cause.donation_count, cause.donated_amount) for cause in page.context["cl"].result_list}
    assert rows == {trees.pk: (1, Decimal("5.00")), food_bank.pk: (1, Decimal("2.00"))}
    this_month = _changelist(client, "?period=this_month")
    rows = {cause.pk: cause.donation_count for cause in this_month.context["cl"].result_list}
    assert rows == {trees.pk: 1, food_bank.pk: 0}


def test_the_cause_list_costs_the_same_queries_for_many_causes(admin_client, tiers):
    donor = factories.enrolled_member()
    give(donor, 50_000)
    _donate(donor, donation_reward(cause(name_de="Erster")))
    with CaptureQueriesContext(connection) as one:
        assert _changelist(admin_client).status_code == 200
    for index in range(10):
        _donate(donor, donation_reward(cause(name_de=f"Zweck {index}")))
    with CaptureQueriesContext(connection) as eleven:
        assert _changelist(admin_client).status_code == 200
    assert len(eleven) == len(one)


def _csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body), delimiter=";"))


def test_finance_exports_the_totals_per_cause_and_month_and_the_export_is_logged(client, tiers, trees, food_bank):
    donor = factories.enrolled_member()
    give(donor, 2000)
    tree = donation_reward(trees, points_cost=500, value=Decimal("5.00"))
    _donate(donor, tree)
    _donate(donor, tree)
    _donate(donor, donation_reward(food_bank))
    finance = factories.staff_in("Finance")
    client.force_login(finance)
    response = client.post(reverse("admin:rewards_donationcause_changelist") + "?period=this_month",
                           {"action": "export_totals_csv", ACTION_CHECKBOX_NAME: [trees.pk, food_bank.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    heading, *rows = _csv_rows(response)
    assert len(heading) == 6
    month = f"{timezone.localtime():%Y-%m}"
    assert sorted(rows) == sorted([[month, "Bäume für den Bergwald", "Bergwaldprojekt e. V.", "2", "1000", "10,00"],
                                   [month, "Tafel", "Tafel e. V.", "1", "200", "2,00"]])
    log = ExportLog.objects.get()
    assert (log.kind, log.row_count, log.created_by) == ("donations", 2, finance)


@pytest.mark.parametrize(("group_name", "allowed"), [("Marketing", False), ("Support", False), ("Finance", True),
                                                     ("Administrator", True)])
def test_only_finance_and_administrators_export_the_totals(client, tiers, trees, group_name, allowed):
    client.force_login(factories.staff_in(group_name))
    page = _changelist(client)
    if page.status_code == 403:
        assert not allowed
        return
    assert ('value="export_totals_csv"' in page.content.decode()) == allowed
    response = client.post(reverse("admin:rewards_donationcause_changelist"),
                           {"action": "export_totals_csv", ACTION_CHECKBOX_NAME: [trees.pk]})
    assert (response.get("Content-Type", "").startswith("text/csv")) == allowed
    assert ExportLog.objects.exists() == allowed


def test_support_cancels_a_donation_from_the_console(client, member, trees):
    give(member, 500)
    redemption = redemption_create(member_id=member.pk, reward_id=donation_reward(trees).pk)
    client.force_login(factories.staff_in("Support"))
    client.post(reverse("admin:rewards_donation_changelist"),
                {"action": "cancel_donations", ACTION_CHECKBOX_NAME: [redemption.donation.pk]})
    assert balance(member) == 500
    assert Donation.objects.get().cancelled_at is not None


# --- GDPR ----------------------------------------------------------------------------------------

def test_the_member_data_export_lists_the_donations_and_not_as_vouchers(member, trees):
    give(member, 500)
    redemption_create(member_id=member.pk, reward_id=donation_reward(trees).pk)
    data = member_export_data(member)
    assert data["vouchers"] == []
    [donation] = data["donations"]
    assert (donation["cause"], donation["organisation"], donation["points"], donation["amount"]) == (
        "Bäume für den Bergwald", "Bergwaldprojekt e. V.", 200, Decimal("2.00"))


def test_erasure_unlinks_the_donations_and_keeps_the_totals(member, trees):
    give(member, 700)
    reward = donation_reward(trees)
    _donate(member, reward)
    _donate(member, reward)
    before = causes_with_totals().get(pk=trees.pk)
    member_erase(member_id=member.pk)
    after = causes_with_totals().get(pk=trees.pk)
    assert (after.donation_count, after.donated_points, after.donated_amount) == (
        before.donation_count, before.donated_points, before.donated_amount) == (2, 400, Decimal("4.00"))
    assert list(Donation.objects.values_list("member_id", flat=True)) == [None, None]
    with pytest.raises(DonationNotCancellable):  # nobody to give the points back to
        donation_cancel(donation_id=Donation.objects.first().pk)
    assert ledger_mismatches() == []
    call_command("verify_ledger")


# --- Portal --------------------------------------------------------------------------------------

def test_the_activity_says_donation_to_the_cause(member, trees):
    give(member, 500)
    redemption = redemption_create(member_id=member.pk, reward_id=donation_reward(trees).pk)
    donation_cancel(donation_id=redemption.donation.pk)
    titles = [line.title for line in explain_entries(member, ledger_entries(member)[:2])]
    assert titles == ["Donation cancelled: Bäume für den Bergwald", "Donation to Bäume für den Bergwald"]


@pytest.fixture
def signed_in(client, tiers):
    from allauth.account.models import EmailAddress

    from members.services import member_link_or_enrol

    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    client.force_login(user)
    client.member = member
    return client


def test_the_portal_catalogue_shows_the_cause_and_donating_thanks_the_member(signed_in, trees):
    member = signed_in.member
    give(member, 500)
    reward = donation_reward(trees, name_de="Einen Baum pflanzen", value=Decimal("5.00"))
    catalogue = signed_in.get(reverse("portal:rewards")).content.decode()
    assert "Bäume für den Bergwald" in catalogue and "5,00 €" in catalogue
    confirm = signed_in.get(reverse("portal:redeem", args=[reward.pk])).content.decode()
    assert "Yes, donate" in confirm
    response = signed_in.post(reverse("portal:redeem", args=[reward.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:donations")
    page = response.content.decode()
    assert "Thank you! Your donation of 5,00 € goes to Bäume für den Bergwald." in page
    assert "Donation to Bäume für den Bergwald" in page
    vouchers = signed_in.get(reverse("portal:vouchers")).content.decode()
    assert "Einen Baum pflanzen" not in vouchers
    dashboard = signed_in.get(reverse("portal:dashboard")).content.decode()
    assert "You have donated 5,00 €." in dashboard


def test_the_seeded_demo_has_two_causes_with_donations_and_the_ledger_holds(db):
    call_command("seed_demo", members=3, stdout=io.StringIO())
    totals = {cause.name_de: cause.donation_count for cause in causes_with_totals()}
    assert set(totals) == {"Tafel in Ihrer Stadt", "Bäume für den Bergwald"}
    assert all(count >= 1 for count in totals.values())
    from members.demo import DEMO_MEMBER_EMAIL

    demo_member_causes = set(Donation.objects.filter(member__email__iexact=DEMO_MEMBER_EMAIL)
                             .values_list("cause__name_de", flat=True))
    assert demo_member_causes == set(totals)
    call_command("verify_ledger")
