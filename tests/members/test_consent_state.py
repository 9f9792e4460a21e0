"""members.ConsentState, kept by triggers on the consent records, is at every moment what the
records say: the latest record of each (member, purpose), by time and then id, and whether it is
effective (ConsentRecord.is_effective). Checked after each kind of write: a grant, a double opt-in
confirmed later, a withdrawal, records of one instant, a bulk insert, a deletion, a merge."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from campaigns.segments import consent_effective_q
from members.merge import member_merge
from members.models import ConsentRecord, ConsentState, Member
from tests import factories

EMAIL, SMS = ConsentRecord.Purpose.EMAIL, ConsentRecord.Purpose.SMS


def _definition() -> dict[tuple[int, str], bool]:
    latest: dict[tuple[int, str], ConsentRecord] = {}
    for record in ConsentRecord.objects.order_by("created_at", "id"):
        latest[(record.member_id, record.purpose)] = record
    return {key: record.is_effective for key, record in latest.items()}


def _state() -> dict[tuple[int, str], bool]:
    return {(row.member_id, row.purpose): row.effective for row in ConsentState.objects.all()}


def _agrees() -> None:
    assert _state() == _definition()


def test_the_consent_state_follows_every_kind_of_write(db):
    anna, bernd = factories.MemberFactory(), factories.MemberFactory()
    now = timezone.now()
    email = factories.ConsentRecordFactory(member=anna, purpose=EMAIL, confirmed_at=None, created_at=now)
    _agrees()
    assert _state()[(anna.pk, EMAIL)] is False  # e-mail counts after double opt-in only

    ConsentRecord.objects.filter(pk=email.pk).update(confirmed_at=now)
    _agrees()
    assert _state()[(anna.pk, EMAIL)] is True

    factories.ConsentRecordFactory(member=anna, purpose=SMS, created_at=now)
    withdrawal = factories.ConsentRecordFactory(member=anna, purpose=EMAIL, granted=False,
                                                created_at=now + timedelta(minutes=1))
    _agrees()
    assert _state()[(anna.pk, EMAIL)] is False and _state()[(anna.pk, SMS)] is True

    # Records of one instant: the later id decides.
    ConsentRecord.objects.bulk_create([
        ConsentRecord(member=bernd, purpose=SMS, granted=False, source="portal", created_at=now),
        ConsentRecord(member=bernd, purpose=SMS, granted=True, source="portal", created_at=now),
        ConsentRecord(member=bernd, purpose=EMAIL, granted=True, source="portal", created_at=now, confirmed_at=now),
    ])
    _agrees()
    assert _state()[(bernd.pk, SMS)] is True

    withdrawal.delete()  # the grant before it is the latest again
    _agrees()
    assert _state()[(anna.pk, EMAIL)] is True
    ConsentRecord.objects.filter(member=anna, purpose=SMS).delete()
    _agrees()
    assert (anna.pk, SMS) not in _state()


def test_a_merge_moves_the_consent_state_with_the_records(tiers):
    survivor, duplicate = factories.enrolled_member(), factories.enrolled_member()
    factories.ConsentRecordFactory(member=duplicate, purpose=SMS, created_at=timezone.now())
    member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk)
    _agrees()
    assert _state() == {(survivor.pk, SMS): True}


def test_segments_count_members_by_the_consent_state(db):
    consenting, withdrawn, unconfirmed = (factories.MemberFactory() for _ in range(3))
    now = timezone.now()
    factories.ConsentRecordFactory(member=consenting, purpose=EMAIL, created_at=now)
    factories.ConsentRecordFactory(member=withdrawn, purpose=EMAIL, created_at=now)
    factories.ConsentRecordFactory(member=withdrawn, purpose=EMAIL, granted=False, created_at=now + timedelta(1))
    factories.ConsentRecordFactory(member=unconfirmed, purpose=EMAIL, confirmed_at=None, created_at=now)
    chosen = set(Member.objects.filter(consent_effective_q(EMAIL)).values_list("pk", flat=True))
    assert chosen == {consenting.pk}
