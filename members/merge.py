"""Merging duplicates: the same person on two cards becomes one member (the survivor)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from core.events import publish

from .errors import InvalidMerge
from .events import MembersMerged
from .models import ConsentRecord, Member, MemberMerge, PartnerRelation, PushSubscription


def _relations_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """The partners who knew the duplicate know the person: they keep seeing the survivor."""
    PartnerRelation.objects.bulk_create(
        [PartnerRelation(member_id=survivor_id, partner_id=relation.partner_id, store_id=relation.store_id,
                         via=relation.via, created_at=relation.created_at)
         for relation in PartnerRelation.objects.filter(member_id=duplicate_id)],
        ignore_conflicts=True)


# --- Merging duplicates ----------------------------------------------------------------------

@dataclass(frozen=True)
class MergeOutcome:
    merge: MemberMerge
    survivor: Member


@transaction.atomic
def member_merge(*, survivor_id: int, duplicate_id: int, reason: str = "",
                 staff_user: AbstractBaseUser | None = None) -> MergeOutcome:
    """Fold a duplicate into the survivor; the duplicate stays readable as "merged into" the
    survivor. Members moves what it holds (consents, figures, login, partner relations); every
    other app moves its own rows in a `MembersMerged` subscriber, in this transaction (rewards:
    the balance as a pair of transfer entries, purchases, vouchers, stamp cards, the tier)."""
    if survivor_id == duplicate_id:
        raise InvalidMerge(detail=_("a member cannot be merged into itself"))
    # Both rows in primary-key order (the ledger's lock order, rewards.ledger.members_lock).
    locked = {member.pk: member for member in
              Member.objects.select_for_update().filter(pk__in={survivor_id, duplicate_id}).order_by("pk")}
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    for member in (survivor, duplicate):
        if member.status in (Member.Status.MERGED, Member.Status.ERASED):
            raise InvalidMerge(detail=_("%(member)s was already merged or erased") % {"member": member})

    pending = duplicate.points_pending
    ConsentRecord.objects.filter(member=duplicate).update(member=survivor)
    PushSubscription.objects.filter(member=duplicate).update(member=survivor)  # with the push consent
    Member.objects.filter(pk=survivor.pk).update(
        points_pending=F("points_pending") + pending,
        lifetime_spend=F("lifetime_spend") + duplicate.lifetime_spend,
        spend_12m=F("spend_12m") + duplicate.spend_12m,
        purchases_12m=F("purchases_12m") + duplicate.purchases_12m,
    )
    if duplicate.last_purchase_at and (survivor.last_purchase_at is None
                                       or duplicate.last_purchase_at > survivor.last_purchase_at):
        Member.objects.filter(pk=survivor.pk).update(last_purchase_at=duplicate.last_purchase_at)
    duplicate_user_id = duplicate.user_id
    Member.objects.filter(pk=duplicate.pk).update(  # the tier (and its grant) is the tier engine's: rewards
        status=Member.Status.MERGED, merged_into=survivor, points_pending=0, user=None,
    )
    # Members merged into the duplicate earlier are the same person too: point them at the
    # survivor, so `merged_into` always names the live member (qualifying points, the 360° page
    # and the ledger history follow one level, never a chain). MemberMerge keeps the history.
    Member.objects.filter(merged_into=duplicate).update(merged_into=survivor)
    if survivor.user_id is None and duplicate_user_id is not None:  # keep the person's portal login
        Member.objects.filter(pk=survivor.pk).update(user_id=duplicate_user_id)
    _relations_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk)
    # The subscribers fill in what they moved (points_moved, purchases_moved).
    merge = MemberMerge.objects.create(survivor=survivor, duplicate=duplicate, points_moved=0, pending_moved=pending,
                                       purchases_moved=0, reason=reason, created_by=staff_user)
    publish(MembersMerged(member_id=survivor.pk, duplicate_id=duplicate.pk, merge_id=merge.pk))
    merge.refresh_from_db()
    survivor.refresh_from_db()
    return MergeOutcome(merge=merge, survivor=survivor)
