"""Rewards' part of a member's data export (Art. 15/20 DSGVO), registered with members.gdpr in
RewardsConfig.ready(): the ledger, purchases, vouchers and stamp cards of the person (the member
and everyone merged into it)."""

from __future__ import annotations

from members.gdpr import export_section
from members.models import Member

from .models import PointEntry, Purchase, Redemption, StampCard


@export_section("ledger")
def ledger_export(member: Member, people: list[int]) -> list[dict]:
    return [
        {"created_at": entry.created_at, "kind": entry.kind, "points": entry.points, "reason": entry.reason,
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
        for voucher in Redemption.objects.filter(member_id__in=people).select_related("reward")
        .order_by("issued_at", "id")
    ]


@export_section("stamp_cards")
def stamp_cards_export(member: Member, people: list[int]) -> list[dict]:
    return [
        {"program": card.program.name, "stamps": card.stamps, "stamps_needed": card.program.stamps_needed,
         "completed_at": card.completed_at}
        for card in StampCard.objects.filter(member_id__in=people).select_related("program").order_by("id")
    ]
