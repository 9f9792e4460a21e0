"""Rewards' part of the data protection requests, registered in RewardsConfig.ready(): the
ledger, purchases, vouchers, donations and stamp cards in a member's data export (Art. 15/20 DSGVO,
members.gdpr), the ledger's texts scrubbed and donations unlinked from the member on erasure (Art. 17,
members.privacy)."""

from __future__ import annotations

from django.db import connection

from members.gdpr import export_section
from members.models import Member
from members.privacy import PersonalValues, personal_data_scrubber

from .models import Donation, PointEntry, Purchase, Redemption, StampCard, TierMembership


@export_section("ledger")
def ledger_export(member: Member, people: list[int]) -> list[dict]:
    return [
        {"created_at": entry.created_at, "kind": entry.kind, "points": entry.points, "reason": entry.shown_reason,
         "expires_at": entry.expires_at, "source": entry.source, "reference": entry.reference,
         "purchase": entry.purchase.order_reference if entry.purchase else None}
        for entry in PointEntry.objects.filter(member_id__in=people).select_related("purchase")
        .order_by("created_at", "id")
    ]


@export_section("purchases")
def purchases_export(member: Member, people: list[int]) -> list[dict]:
    purchases = (Purchase.objects.filter(member_id__in=people).select_related("partner", "store")
                 .prefetch_related("lines", "breakdown__rule", "breakdown__tier", "returns")
                 .order_by("occurred_at", "id"))
    return [
        {"order_reference": purchase.order_reference, "partner": purchase.partner.name,
         "store": purchase.store.name if purchase.store else None, "channel": purchase.channel,
         "amount": purchase.amount, "currency": purchase.currency, "occurred_at": purchase.occurred_at,
         "points_earned": purchase.points_earned, "points_pending": purchase.points_pending,
         "points_reversed": purchase.points_reversed, "returned_amount": purchase.returned_amount,
         "lines": [{"sku": line.sku, "category": line.category, "quantity": line.quantity, "amount": line.amount,
                    "points": line.points, "returned_amount": line.returned_amount}
                   for line in purchase.lines.all()],
         "breakdown": [{"kind": part.kind, "description": part.describe(), "points": part.points}
                       for part in purchase.breakdown.all()],
         "returns": [{"reference": ret.reference, "amount": ret.amount, "points_reversed": ret.points_reversed,
                      "created_at": ret.created_at} for ret in purchase.returns.all()]}
        for purchase in purchases
    ]


@export_section("vouchers")
def vouchers_export(member: Member, people: list[int]) -> list[dict]:
    return [
        {"reward": voucher.reward.name, "code": voucher.display_code, "status": voucher.status,
         "source": voucher.source, "points": voucher.points, "issued_at": voucher.issued_at,
         "expires_at": voucher.expires_at, "used_at": voucher.used_at, "cancelled_at": voucher.cancelled_at}
        for voucher in Redemption.objects.filter(member_id__in=people, code__isnull=False).select_related("reward")
        .order_by("issued_at", "id")
    ]


@export_section("donations")
def donations_export(member: Member, people: list[int]) -> list[dict]:
    return [
        {"cause": donation.cause.name, "organisation": donation.cause.organisation, "reward": donation.reward.name,
         "points": donation.points, "amount": donation.amount, "currency": "EUR", "donated_at": donation.created_at,
         "cancelled_at": donation.cancelled_at}
        for donation in Donation.objects.filter(member_id__in=people).select_related("cause", "reward")
        .order_by("created_at", "id")
    ]


@personal_data_scrubber
def unlink_donations(member_ids: list[int], values: PersonalValues) -> None:
    """An erased member's donations lose their member: cause, euros, points and date stay, so the
    totals per cause and what was paid out do not change. (The redemption behind a donation points
    at the anonymised member, like every voucher.)"""
    Donation.objects.filter(member_id__in=member_ids).update(member=None)


@export_section("stamp_cards")
def stamp_cards_export(member: Member, people: list[int]) -> list[dict]:
    return [
        {"program": card.program.name, "stamps": card.stamps, "stamps_needed": card.program.stamps_needed,
         "completed_at": card.completed_at}
        for card in StampCard.objects.filter(member_id__in=people).select_related("program").order_by("id")
    ]


@export_section("tier_memberships")
def tier_memberships_export(member: Member, people: list[int]) -> list[dict]:
    """Paid and invitation memberships (staff's reason for an invitation is about the member too)."""
    return [
        {"tier": membership.tier.name, "source": membership.source, "status": membership.status,
         "starts": membership.starts, "ends": membership.ends, "reason": membership.reason,
         "fee_purchase": membership.fee_purchase.order_reference if membership.fee_purchase else None}
        for membership in TierMembership.objects.filter(member_id__in=people).select_related("tier", "fee_purchase")
        .order_by("starts", "id")
    ]


@personal_data_scrubber
def scrub_membership_reasons(member_ids: list[int], values: PersonalValues) -> None:
    """Staff type a reason for an invitation ("VIP for Erika Mustermann, press"): scrubbed like
    the ledger's texts. The rows stay (the fee purchases and the tier history refer to them)."""
    rows = TierMembership.objects.filter(member_id__in=member_ids).exclude(reason="").values_list("pk", "reason")
    for pk, reason in rows.iterator():
        scrubbed = values.scrub(reason)
        if scrubbed != reason:
            TierMembership.objects.filter(pk=pk).update(reason=scrubbed)


@personal_data_scrubber
def scrub_ledger_texts(member_ids: list[int], values: PersonalValues) -> None:
    """Staff-typed reasons, the parameters of system texts (a merge names customer numbers) and
    import references ("import-opening:<customer number>") of the ledger. The append-only
    trigger lets exactly these three columns change, only in a transaction that asks for it
    (rewards migrations 0009 and 0019); points and dates cannot move."""
    rows = PointEntry.objects.filter(member_id__in=member_ids).values_list("pk", "reason", "reason_params",
                                                                         "reference")
    changes = []
    for pk, reason, params, reference in rows.iterator():
        scrubbed = values.scrub(reason), values.scrub(params), values.scrub(reference)
        if scrubbed != (reason, params, reference):
            changes.append((pk, *scrubbed))
    if not changes:
        return
    _ledger_anonymise(on=True)
    for pk, reason, params, reference in changes:
        PointEntry.objects.filter(pk=pk).update(reason=reason, reason_params=params, reference=reference)
    # Off again for the rest of the transaction. On an error there is nothing to switch off: a
    # rollback (also to a savepoint) undoes the SET LOCAL with everything else.
    _ledger_anonymise(on=False)


def _ledger_anonymise(*, on: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('treuepunkt.ledger_anonymise', %s, true)", ["on" if on else "off"])
