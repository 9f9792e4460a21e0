"""Stamp cards (Stempelkarte) and cashback: rewards that issue themselves from purchases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.merge import member_merge
from rewards.models import PointEntry, Purchase, Redemption, StampCard, StampCredit
from rewards.purchases import LineData, purchase_record, purchase_release_pending
from rewards.selectors import ledger_mismatches
from rewards.vouchers import stamp_cards_apply_purchase, stamp_cards_issue_waiting
from tests import factories


def buy(member, partner, reference, *lines, currency="EUR"):
    lines = [LineData(amount=Decimal(amount), category=category, quantity=quantity)
             for amount, category, quantity in lines]
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, currency=currency,
                           amount=sum((line.amount for line in lines), Decimal(0)), lines=lines).purchase


def cards(member):
    return list(StampCard.objects.filter(member=member).order_by("pk").values_list("stamps", "completed_at"))


def test_a_full_card_issues_its_reward_starts_a_new_card_and_carries_the_overflow(member, partner, base_rule):
    program = factories.StampCardProgramFactory(stamps_needed=3, category="Kaffee", mode="item")
    buy(member, partner, "S1", ("9", "Kaffee", 2), ("5", "Brot", 4))
    assert cards(member) == [(2, None)]
    buy(member, partner, "S2", ("9", "kaffee", 2))  # categories match regardless of case
    full, fresh = StampCard.objects.filter(member=member).order_by("pk")
    assert (full.stamps, fresh.stamps, fresh.completed_at) == (3, 1, None)
    assert full.completed_at is not None
    voucher = full.redemption
    assert (voucher.reward, voucher.points, voucher.source, voucher.status) == (
        program.reward, 0, Redemption.Source.STAMP_CARD, Redemption.Status.ISSUED)
    # The voucher cost no points: the balance is just what the purchases earned.
    member.refresh_from_db()
    assert member.points_balance == 23 and not PointEntry.objects.filter(kind=PointEntry.Kind.REDEEM).exists()


def test_a_replayed_purchase_stamps_nothing_more(member, partner, base_rule):
    factories.StampCardProgramFactory(stamps_needed=3, category="Kaffee", mode="item")
    buy(member, partner, "S1", ("9", "Kaffee", 2))
    buy(member, partner, "S1", ("9", "Kaffee", 2))  # the till retries
    purchase = Purchase.objects.get(order_reference="S1")
    assert stamp_cards_apply_purchase(purchase=purchase) == []  # and calling the hook again does nothing
    assert cards(member) == [(2, None)]
    assert StampCredit.objects.get(purchase=purchase).stamps == 2


def test_one_stamp_per_visit_above_the_minimum_spent_on_qualifying_items(member, partner, base_rule):
    factories.StampCardProgramFactory(stamps_needed=10, category="Kaffee", mode="visit", min_amount=Decimal("3"))
    buy(member, partner, "V1", ("4.50", "Kaffee", 3))  # one visit, one stamp
    buy(member, partner, "V2", ("2.00", "Kaffee", 1), ("30", "Wein", 1))  # not enough coffee
    buy(member, partner, "V3", ("30", "Wein", 1))  # no coffee at all
    buy(member, partner, "V4", ("2.90", "Kaffee", 1), currency="CHF")  # 3.07 EUR
    assert cards(member) == [(2, None)]


def test_a_program_without_category_stamps_any_purchase(member, partner, base_rule):
    factories.StampCardProgramFactory(stamps_needed=2, category="", mode="visit")
    buy(member, partner, "A1", ("10", "Wein", 1))
    buy(member, partner, "A2", ("10", "", 1))
    assert [stamps for stamps, _ in cards(member)] == [2, 0]
    assert Redemption.objects.filter(member=member).count() == 1


def test_many_stamps_at_once_can_fill_several_cards(member, partner, base_rule):
    factories.StampCardProgramFactory(stamps_needed=3, category="Kaffee", mode="item")
    buy(member, partner, "BIG", ("70", "Kaffee", 7))
    assert [stamps for stamps, _ in cards(member)] == [3, 3, 1]
    assert Redemption.objects.filter(member=member, source=Redemption.Source.STAMP_CARD).count() == 2


def test_inactive_programmes_stamp_nothing(member, partner, base_rule):
    factories.StampCardProgramFactory(stamps_needed=3, category="Kaffee", active=False)
    buy(member, partner, "S1", ("9", "Kaffee", 2))
    assert cards(member) == []


def test_a_full_card_waits_for_a_sold_out_reward_and_the_purchase_still_counts(member, partner, base_rule):
    program = factories.StampCardProgramFactory(stamps_needed=2, category="Kaffee", mode="item",
                                                reward__stock=0)
    buy(member, partner, "S1", ("9", "Kaffee", 3))
    member.refresh_from_db()
    assert member.points_balance == 9  # the purchase was recorded and earned
    assert cards(member) == [(3, None)]  # full, waiting, no stamp lost
    assert stamp_cards_issue_waiting() == 0  # still sold out
    program.reward.stock = 1
    program.reward.save()
    assert stamp_cards_issue_waiting() == 1
    assert [stamps for stamps, _ in cards(member)] == [2, 1]
    assert stamp_cards_issue_waiting() == 0


def test_merging_members_adds_the_duplicates_stamps_to_the_survivors_card(member, partner, base_rule):
    factories.StampCardProgramFactory(stamps_needed=5, category="Kaffee", mode="item")
    duplicate = factories.enrolled_member()
    buy(member, partner, "M1", ("9", "Kaffee", 3))
    buy(duplicate, partner, "D1", ("9", "Kaffee", 4))
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    assert cards(duplicate) == []
    assert [stamps for stamps, _ in cards(member)] == [5, 2]
    assert Redemption.objects.filter(member=member, source=Redemption.Source.STAMP_CARD).count() == 1


def test_without_an_active_programme_a_purchase_does_not_touch_the_stamp_tables(member, partner, base_rule):
    factories.StampCardProgramFactory(active=False)
    buy(member, partner, "WARM", ("9", "Kaffee", 1))  # loads the per-process rule cache
    with CaptureQueriesContext(connection) as queries:
        buy(member, partner, "COLD", ("9", "Kaffee", 1))
    assert not [query for query in queries.captured_queries if "rewards_stamp" in query["sql"]]


# --- Cashback ----------------------------------------------------------------------------------

def test_cashback_turns_points_into_a_voucher_and_tells_the_member(member, partner, base_rule,
                                                                  django_capture_on_commit_callbacks):
    program = factories.CashbackProgramFactory(threshold_points=1000, reward__points_cost=500)
    with django_capture_on_commit_callbacks(execute=True):
        buy(member, partner, "C1", ("999", "", 1))
    assert not Redemption.objects.exists() and not mail.outbox
    with django_capture_on_commit_callbacks(execute=True):
        buy(member, partner, "C2", ("600", "", 1))
    member.refresh_from_db()
    issued = list(Redemption.objects.filter(member=member).order_by("pk"))
    # 1599 points ≥ 1000: one voucher of 500 → 1099, still ≥ 1000: another → 599
    assert [(voucher.reward, voucher.points, voucher.source) for voucher in issued] == [
        (program.reward, 500, Redemption.Source.CASHBACK)] * 2
    assert member.points_balance == 599
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [member.email] and all(voucher.display_code in message.body for voucher in issued)
    assert ledger_mismatches() == []


def test_cashback_can_take_its_own_number_of_points_per_voucher(member, partner, base_rule):
    factories.CashbackProgramFactory(threshold_points=300, points_per_voucher=300, reward__points_cost=900)
    buy(member, partner, "C1", ("350", "", 1))
    member.refresh_from_db()
    assert member.points_balance == 50
    assert Redemption.objects.get(member=member).points == 300


def test_cashback_without_an_email_address_issues_quietly(partner, base_rule, tiers,
                                                          django_capture_on_commit_callbacks):
    member = factories.enrolled_member(email="")
    factories.CashbackProgramFactory(threshold_points=100, reward__points_cost=100)
    with django_capture_on_commit_callbacks(execute=True):
        buy(member, partner, "C1", ("150", "", 1))
    assert Redemption.objects.filter(member=member).count() == 1
    assert mail.outbox == []


def test_cashback_with_a_sold_out_voucher_keeps_the_points(member, partner, base_rule):
    factories.CashbackProgramFactory(threshold_points=100, reward__points_cost=100, reward__stock=0)
    buy(member, partner, "C1", ("150", "", 1))
    member.refresh_from_db()
    assert member.points_balance == 150 and not Redemption.objects.exists()


@override_settings(LOYALTY_RETURN_WINDOW_DAYS=14)
def test_cashback_converts_held_points_when_they_are_released(member, partner, base_rule):
    factories.CashbackProgramFactory(threshold_points=100, reward__points_cost=100)
    purchase = buy(member, partner, "C1", ("150", "", 1))
    assert not Redemption.objects.exists()  # held for the return window, not earned yet
    Purchase.objects.filter(pk=purchase.pk).update(available_at=timezone.now())
    purchase_release_pending(purchase_id=purchase.pk)
    member.refresh_from_db()
    assert member.points_balance == 50 and Redemption.objects.filter(member=member).count() == 1


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_cashback_mail_is_in_the_members_language(partner, base_rule, tiers, language,
                                                      django_capture_on_commit_callbacks):
    member = factories.enrolled_member(language=language)
    factories.CashbackProgramFactory(threshold_points=100, reward__points_cost=100,
                                     reward__name_de="5 € Gutschein", reward__name_en="5 € voucher")
    with django_capture_on_commit_callbacks(execute=True):
        buy(member, partner, "C1", ("150", "", 1))
    assert ("5 € Gutschein" if language == "de" else "5 € voucher") in mail.outbox[0].body
