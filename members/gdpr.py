"""Art. 15/20 DSGVO: a member's data export, the audit of privacy requests, and what other apps
add to the export.

Members imports no other domain app, yet the export must hold everything we keep about the
person: each app registers a section (`export_section("vouchers")`) in its AppConfig.ready(),
and `members.gdpr.member_export_data` asks every registered section, in registration order
(INSTALLED_APPS order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .models import Member, PrivacyRequest

if TYPE_CHECKING:
    from partners.models import Partner

# A section gets the member and the ids of everyone who is the same person (merged members).
ExportSection = Callable[[Member, list[int]], Any]

_sections: dict[str, ExportSection] = {}


def export_section(name: str) -> Callable[[ExportSection], ExportSection]:
    """Decorator: the function's result is the export's `name` entry."""
    def register(section: ExportSection) -> ExportSection:
        _sections[name] = section
        return section
    return register


def export_sections(member: Member, people: list[int]) -> dict[str, Any]:
    return {name: section(member, people) for name, section in _sections.items()}


@transaction.atomic
def privacy_request_record(*, member_id: int, kind: str, channel: str, staff_user: AbstractBaseUser | None = None,
                           partner: Partner | None = None) -> PrivacyRequest:
    """Audit an export or erasure with no personal data: the member's id, who, when, how."""
    return PrivacyRequest.objects.create(member_id=member_id, kind=kind, channel=channel,
                                         staff_user=staff_user if staff_user is not None and staff_user.pk else None,
                                         partner=partner)


@transaction.atomic
def member_export(*, member_id: int, channel: str, staff_user: AbstractBaseUser | None = None,
                  partner: Partner | None = None) -> dict:
    """Art. 15/20 DSGVO: the member's data (`member_export_data`), with the request audited."""
    member = Member.objects.select_related("tier", "user").get(pk=member_id)
    privacy_request_record(member_id=member.pk, kind=PrivacyRequest.Kind.EXPORT, channel=channel,
                           staff_user=staff_user, partner=partner)
    return member_export_data(member)


def member_export_data(member: Member) -> dict:
    """Art. 15 and 20 DSGVO: everything we hold about the member, as JSON-ready data
    (dates and decimals are turned into text by the caller's JSON encoder)."""
    user = member.user
    people = [member.pk, *member.merged_members.values_list("pk", flat=True)]
    return {
        "format": "treuepunkt-member-export",
        "version": 1,
        "generated_at": timezone.now(),
        "profile": {
            "customer_number": member.customer_number, "card_number": member.card_number, "email": member.email,
            "salutation": member.salutation, "first_name": member.first_name, "last_name": member.last_name,
            "phone": member.phone, "birth_date": member.birth_date, "street": member.street,
            "postal_code": member.postal_code, "city": member.city, "country": member.country,
            "language": member.language, "status": member.status, "joined_at": member.joined_at,
            "tier": member.tier.name if member.tier else None, "tier_granted_until": member.tier_granted_until,
            "points_balance": member.points_balance, "points_pending": member.points_pending,
            "tags": list(member.tags.values_list("name", flat=True)),
            "portal_account": {"email": user.email, "date_joined": user.date_joined, "last_login": user.last_login}
            if user else None,
        },
        "consents": [
            {"purpose": record.purpose, "granted": record.granted, "source": record.source,
             "text_version": record.text_version, "ip_address": record.ip_address,
             "confirmed_at": record.confirmed_at, "created_at": record.created_at}
            for record in member.consents.order_by("created_at", "id")
        ],
        "push_devices": [
            {"push_service": subscription.endpoint.split("/")[2] if "//" in subscription.endpoint else "",
             "created_at": subscription.created_at, "last_success_at": subscription.last_success_at}
            for subscription in member.push_subscriptions.order_by("created_at", "id")
        ],
        "tier_history": [
            {"from": change.from_tier.name if change.from_tier else None,
             "to": change.to_tier.name if change.to_tier else None, "cause": change.cause, "reason": change.reason,
             "qualifying_points": change.qualifying_points, "created_at": change.created_at}
            for change in member.tier_history.select_related("from_tier", "to_tier").order_by("created_at", "id")
        ],
        # Points, purchases, vouchers, stamp cards (rewards), referrals, feedback: members.gdpr.
        **export_sections(member, people),
    }
