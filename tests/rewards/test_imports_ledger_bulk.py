"""rewards.ledger.points_credit_bulk: many credits in a constant number of statements, same invariant as
points_credit (balance == SUM(entries)), idempotent by reference, members locked while it runs."""

from __future__ import annotations

import random
import threading

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import Sum

from core.errors import ReferenceConflict
from members.models import Member
from rewards.errors import InvalidPurchase
from rewards.ledger import BulkCredit, points_credit_bulk, points_debit, points_open_bulk
from rewards.models import PointEntry
from tests import factories


def assert_invariant(member_ids=None):
    members = Member.objects.all() if member_ids is None else Member.objects.filter(pk__in=member_ids)
    for member in members:
        total = member.point_entries.aggregate(total=Sum("points"))["total"] or 0
        assert member.points_balance == total, member


def test_bulk_credit_books_entries_and_balances_in_one_go(tiers, django_assert_max_num_queries):
    members = [factories.enrolled_member() for _ in range(30)]
    credits = [BulkCredit(member_id=member.pk, points=10 + index, reference=f"opening:{member.pk}")
               for index, member in enumerate(members)]
    with django_assert_max_num_queries(6):  # lock, lookup, insert, update (+ savepoint)
        result = points_credit_bulk(credits=credits, source="import", kind=PointEntry.Kind.ADJUST,
                                    reason="Anfangsbestand")
    assert (result.created, result.already_booked) == (30, 0)
    assert result.points == sum(10 + index for index in range(30))
    assert_invariant()
    entry = members[3].point_entries.get()
    assert (entry.points, entry.source, entry.reference, entry.reason, entry.kind) == (
        13, "import", f"opening:{members[3].pk}", "Anfangsbestand", "adjust")
    assert entry.expires_at is not None


def test_repeating_a_batch_books_nothing_again(tiers):
    member = factories.enrolled_member()
    credits = [BulkCredit(member_id=member.pk, points=50, reference="opening:1")]
    points_credit_bulk(credits=credits, source="import", reason="x")
    again = points_credit_bulk(credits=credits, source="import", reason="x")
    assert (again.created, again.already_booked, again.points) == (0, 1, 0)
    member.refresh_from_db()
    assert member.points_balance == 50 and member.point_entries.count() == 1


def test_a_reference_reused_with_other_points_is_refused_and_nothing_of_the_batch_is_written(tiers):
    first, second = factories.enrolled_member(), factories.enrolled_member()
    points_credit_bulk(credits=[BulkCredit(member_id=first.pk, points=50, reference="r1")], source="import",
                       reason="x")
    with pytest.raises(ReferenceConflict):
        points_credit_bulk(credits=[BulkCredit(member_id=second.pk, points=10, reference="r2"),
                                    BulkCredit(member_id=first.pk, points=60, reference="r1")],
                           source="import", reason="x")
    assert not second.point_entries.exists()
    assert_invariant()


def test_credits_must_be_positive_and_references_unique_within_the_batch(tiers):
    member = factories.enrolled_member()
    with pytest.raises(InvalidPurchase):
        points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=0)], source="import", reason="x")
    with pytest.raises(ReferenceConflict):
        points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=1, reference="a"),
                                    BulkCredit(member_id=member.pk, points=2, reference="a")],
                           source="import", reason="x")
    assert not member.point_entries.exists()


def test_several_credits_for_one_member_add_up(tiers):
    member = factories.enrolled_member()
    points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=5), BulkCredit(member_id=member.pk, points=7)],
                       source="import", reason="x")
    member.refresh_from_db()
    assert member.points_balance == 12 and member.point_entries.count() == 2


def test_qualifying_credits_lift_the_tier_like_points_credit(tiers):
    member = factories.enrolled_member()
    points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=600)], source="campaign",
                       kind=PointEntry.Kind.BONUS, reason="Willkommensbonus")
    member.refresh_from_db()
    assert member.tier.name_de == "Silber"


@pytest.mark.django_db(transaction=True)
def test_members_stay_locked_until_the_batch_commits():
    factories.tier_ladder()
    member = factories.enrolled_member()
    settings = connection.settings_dict
    other = psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                            dbname=settings["NAME"], autocommit=True)
    try:
        with transaction.atomic():
            points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=5)], source="import", reason="x")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT id FROM members_member WHERE id = %s FOR UPDATE NOWAIT", [member.pk])
        other.execute("SELECT id FROM members_member WHERE id = %s FOR UPDATE NOWAIT", [member.pk])
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_and_debits_keep_every_balance_equal_to_its_ledger():
    factories.tier_ladder()
    members = [factories.enrolled_member() for _ in range(12)]
    ids = [member.pk for member in members]
    points_credit_bulk(credits=[BulkCredit(member_id=pk, points=100) for pk in ids], source="seed", reason="x")
    errors: list[BaseException] = []

    def crediting(seed: int) -> None:
        try:
            shuffled = random.Random(seed).sample(ids, len(ids))
            for round_ in range(3):
                points_credit_bulk(credits=[BulkCredit(member_id=pk, points=3, reference=f"{seed}-{round_}-{pk}")
                                            for pk in shuffled], source="race", reason="x")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def debiting(seed: int) -> None:
        try:
            for pk in random.Random(seed).sample(ids, len(ids)):
                points_debit(member_id=pk, points=2, reason="race")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=crediting, args=(seed,)) for seed in range(4)]
    threads += [threading.Thread(target=debiting, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert_invariant(ids)
    for member in Member.objects.filter(pk__in=ids):
        assert member.points_balance == 100 + 4 * 3 * 3 - 4 * 2


def test_opening_credits_for_new_members_book_entries_that_equal_the_balances(tiers):
    member = factories.enrolled_member()
    Member.objects.filter(pk=member.pk).update(points_balance=40)  # as the import inserts a new member
    result = points_open_bulk(credits=[BulkCredit(member_id=member.pk, points=40, reference="import-opening:N1")],
                              source="import", reason="Anfangsbestand")
    assert (result.created, result.points) == (1, 40)
    assert_invariant([member.pk])


def test_opening_credits_that_differ_from_the_balance_are_refused(tiers):
    member = factories.enrolled_member()  # balance 0: a caller that forgot to insert it with 40
    with pytest.raises(ValueError, match="differ"):
        points_open_bulk(credits=[BulkCredit(member_id=member.pk, points=40, reference="x")], source="import",
                         reason="x")
    assert not member.point_entries.exists()


def test_opening_credits_refuse_a_reference_booked_before(tiers):
    first, second = factories.enrolled_member(), factories.enrolled_member()
    points_credit_bulk(credits=[BulkCredit(member_id=first.pk, points=5, reference="import-opening:K1")],
                       source="import", reason="x")
    Member.objects.filter(pk=second.pk).update(points_balance=5)
    with pytest.raises(ReferenceConflict):
        points_open_bulk(credits=[BulkCredit(member_id=second.pk, points=5, reference="import-opening:K1")],
                         source="import", reason="x")
    assert not second.point_entries.exists()


def test_a_batch_reason_with_parameters_is_stored_as_key_and_parameters_on_every_entry(tiers):
    # The batch's parameters go to PostgreSQL as JSON once for all entries (ledger._insert_entries).
    from core.stored_texts import stored_text

    members = [factories.enrolled_member() for _ in range(3)]
    reason = stored_text("campaign-bonus", name="Sommer")
    points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=5, reference=f"c:{member.pk}")
                                for member in members], source="campaign", reason=reason)
    entries = PointEntry.objects.filter(source="campaign")
    assert [(entry.reason_code, entry.reason_params) for entry in entries] == [
        ("campaign-bonus", {"name": "Sommer"})] * 3
    assert {str(entry.shown_reason) for entry in entries} == {str(reason)}
