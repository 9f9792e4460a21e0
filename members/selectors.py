"""Reads about members shared by the console, the portal and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from loyalty_site.audit import audit_trail_of

from .models import Member, Tier


@dataclass(frozen=True)
class TierProgress:
    current: Tier | None
    next: Tier | None
    qualifying_points: int
    points_to_next: int
    percent: int  # 0-100, for a progress bar


def tier_progress(member: Member) -> TierProgress:
    """Where the member stands on the ladder: qualifying points (rolling window) and the gap."""
    from rewards.services import qualifying_points

    points = qualifying_points(member.pk)
    current = member.tier
    current_rank = current.rank if current else -1
    upcoming = Tier.objects.filter(rank__gt=current_rank).order_by("rank").first()
    if upcoming is None:
        return TierProgress(current, None, points, 0, 100)
    floor = current.threshold_points if current else 0
    span = max(1, upcoming.threshold_points - floor)
    percent = max(0, min(100, (points - floor) * 100 // span))
    return TierProgress(current, upcoming, points, max(0, upcoming.threshold_points - points), percent)


def points_expiring_soon(member: Member) -> tuple[int, object]:
    """Points that expire within the warning window unless spent first, and the window's end."""
    from rewards.services import points_expiring_by

    until = timezone.now() + timedelta(days=settings.LOYALTY_EXPIRY_WARNING_DAYS)
    return points_expiring_by(member_id=member.pk, at=until), until


def member_overview(member: Member, *, entries: int = 25, purchases: int = 10) -> dict:
    """Everything the console's 360° page shows, with a bounded number of queries.

    Members merged into this one are part of the picture: their ledger rows and merges show too."""
    from rewards.models import PointEntry, Purchase

    merged_ids = list(member.merged_members.values_list("pk", flat=True))
    expiring, expiring_until = points_expiring_soon(member)
    return {
        "progress": tier_progress(member),
        "expiring": expiring,
        "expiring_until": expiring_until,
        "entries": list(
            PointEntry.objects.filter(member_id__in=[member.pk, *merged_ids])
            .select_related("purchase", "created_by", "member")
            .order_by("-created_at", "-id")[:entries]
        ),
        "purchases": list(
            Purchase.objects.filter(member=member)
            .select_related("store", "partner")
            .prefetch_related("breakdown__rule", "breakdown__tier", "returns")
            .order_by("-occurred_at", "-id")[:purchases]
        ),
        "consents": list(member.consents.order_by("-created_at", "-id")[:20]),
        "tier_history": list(member.tier_history.select_related("from_tier", "to_tier", "created_by")[:10]),
        "merged_members": list(member.merged_members.all()),
        "audit": audit_trail_of(member, limit=10),
    }
