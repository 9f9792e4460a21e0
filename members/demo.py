"""Demo data of members: tiers, believable customers with consents, and the demo logins.

The orchestration (which app's demo runs when, with the demo partner of rewards) is the top
layer's: loyalty_site/demo.py and `manage.py seed_demo`. Everything goes through the services,
so the demo obeys the same invariants as real data; each function is idempotent.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from faker import Faker

from . import services
from .models import ConsentRecord, Member, Tier

DEMO_PASSWORD = "treuepunkt-demo"  # noqa: S105 - printed on purpose: demo logins only
DEMO_STAFF_EMAIL = "admin@treuepunkt.example"
DEMO_MEMBER_EMAIL = "erika.mustermann@example.com"

TIERS = [
    # rank, de, en, threshold, multiplier, discount, benefits de, benefits en
    (0, "Basis", "Basic", 0, "1.00", "0", "Punkte sammeln und einlösen.", "Collect and redeem points."),
    (1, "Silber", "Silver", 500, "1.00", "2", "2 % Treuerabatt an der Kasse.", "2 % loyalty discount at the till."),
    (2, "Gold", "Gold", 2000, "1.25", "5", "5 % Treuerabatt, 25 % mehr Punkte.", "5 % discount, 25 % more points."),
    (3, "Platin", "Platinum", 5000, "1.50", "10", "10 % Treuerabatt, 50 % mehr Punkte, VIP-Abende.",
     "10 % discount, 50 % more points, VIP evenings."),
]

# Beside the ladder: not reached by points, held through a membership (rewards.tier_memberships).
MEMBERSHIP_TIERS = [
    # rank, de, en, kind, fee, multiplier, discount, benefits de, benefits en
    (9, "Botschafter", "Ambassador", Tier.Kind.INVITATION, None, "1.50", "10",
     "Auf Einladung: 50 % mehr Punkte, 10 % Treuerabatt, Neuheiten vorab testen.",
     "By invitation: 50 % more points, 10 % discount, try new products first."),
    (10, "VIP", "VIP", Tier.Kind.PAID, "49.00", "2.00", "15",
     "Für 49 € im Jahr: doppelte Punkte, 15 % Treuerabatt, kostenloser Versand, VIP-Abende.",
     "For 49 € a year: double points, 15 % discount, free delivery, VIP evenings."),
]


@transaction.atomic
def seed_tiers() -> None:
    for rank, de, en, threshold, multiplier, discount, benefits_de, benefits_en in TIERS:
        Tier.objects.update_or_create(rank=rank, defaults={
            "name_de": de, "name_en": en, "threshold_points": threshold, "earn_multiplier": Decimal(multiplier),
            "discount_percent": Decimal(discount), "benefits_de": benefits_de, "benefits_en": benefits_en})
    for rank, de, en, kind, fee, multiplier, discount, benefits_de, benefits_en in MEMBERSHIP_TIERS:
        paid = kind == Tier.Kind.PAID
        Tier.objects.update_or_create(rank=rank, defaults={
            "name_de": de, "name_en": en, "kind": kind, "threshold_points": 0,
            "fee_amount": Decimal(fee) if paid else None, "fee_currency": "EUR" if paid else "",
            "duration_months": 12 if paid else None, "earn_multiplier": Decimal(multiplier),
            "discount_percent": Decimal(discount), "benefits_de": benefits_de, "benefits_en": benefits_en})


_FAKERS: dict[str, Faker] = {}


def faker_for(country: str) -> Faker:
    if country not in _FAKERS:  # building a Faker costs tens of milliseconds: one per locale
        _FAKERS[country] = Faker({"DE": "de_DE", "AT": "de_AT", "CH": "de_CH"}[country])
    return _FAKERS[country]


def seed_consents(member: Member, rng: random.Random, joined) -> None:
    if rng.random() < 0.6:
        ConsentRecord.objects.create(member=member, purpose=ConsentRecord.Purpose.EMAIL, granted=True,
                                     source=ConsentRecord.Source.PORTAL, text_version="2025-01",
                                     created_at=joined, confirmed_at=joined + timedelta(minutes=7))
    if rng.random() < 0.2:
        ConsentRecord.objects.create(member=member, purpose=ConsentRecord.Purpose.SMS, granted=True,
                                     source=ConsentRecord.Source.PORTAL, text_version="2025-01", created_at=joined)


def ensure_demo_staff() -> str:
    """A staff login in the Administrator group."""
    from allauth.account.models import EmailAddress

    User = get_user_model()
    staff, created = User.objects.get_or_create(username="admin", defaults={"email": DEMO_STAFF_EMAIL})
    if created:
        staff.set_password(DEMO_PASSWORD)
    staff.is_staff = staff.is_superuser = True
    staff.save()
    staff.groups.add(Group.objects.get(name="Administrator"))
    EmailAddress.objects.update_or_create(user=staff, email=DEMO_STAFF_EMAIL,
                                          defaults={"verified": True, "primary": True})
    return DEMO_STAFF_EMAIL


def ensure_demo_member() -> tuple[Member, bool]:
    """The demo member with a verified portal login; True if she was enrolled just now."""
    from allauth.account.models import EmailAddress

    User = get_user_model()
    created = False
    member = Member.objects.filter(email__iexact=DEMO_MEMBER_EMAIL).first()
    if member is None:
        member = services.member_enrol(email=DEMO_MEMBER_EMAIL, first_name="Erika", last_name="Mustermann",
                                       salutation="ms", street="Heidestraße 17", postal_code="51147", city="Köln",
                                       country="DE", joined_at=timezone.now() - timedelta(days=400))
        created = True
    user, new_user = User.objects.get_or_create(username=DEMO_MEMBER_EMAIL, defaults={"email": DEMO_MEMBER_EMAIL})
    if new_user:
        user.set_password(DEMO_PASSWORD)
        user.save()
    EmailAddress.objects.update_or_create(user=user, email=DEMO_MEMBER_EMAIL,
                                          defaults={"verified": True, "primary": True})
    if member.user_id != user.pk:
        Member.objects.filter(pk=member.pk).update(user=user)
    return member, created
