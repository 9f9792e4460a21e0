"""Demo referrals: the "Freunde werben" programme and friends of the demo member Erika in every
state (pending, qualified in the hold period, waiting for review, rewarded, rejected, expired).

Idempotent: friends are found by e-mail and a friend with a referral is left alone. Everything
goes through the services; only timestamps are moved into the past where a real referral would
have waited (a hold period, an attribution window), so the demo shows each state today."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from members.models import Member
from members.services import member_enrol

from . import services
from .models import Referral, ReferralProgram

# (e-mail, first name, last name, the state to reach, days the friend has been a member)
FRIENDS = [
    ("jonas.weber.demo@example.com", "Jonas", "Weber", Referral.Status.PENDING, 0),
    ("lea.schmidt.demo@example.com", "Lea", "Schmidt", Referral.Status.QUALIFIED, 0),
    ("tom.becker.demo@example.com", "Tom", "Becker", "review", 300),
    ("mia.wagner.demo@example.com", "Mia", "Wagner", Referral.Status.REWARDED, 0),
    ("paul.hoffmann.demo@example.com", "Paul", "Hoffmann", Referral.Status.REWARDED, 0),
    ("sara.koch.demo@example.com", "Sara", "Koch", Referral.Status.REJECTED, 500),
    ("finn.richter.demo@example.com", "Finn", "Richter", Referral.Status.EXPIRED, 0),
]


def seed_program() -> ReferralProgram:
    program = services.program_in_force()
    if program is not None:
        return program
    program, _created = ReferralProgram.objects.get_or_create(name_de="Freunde werben", defaults={
        "name_en": "Refer a friend", "active": not ReferralProgram.objects.filter(active=True).exists(),
        "referrer_points": 500, "referee_points": 250, "qualifying_event": ReferralProgram.Event.PURCHASE,
        "min_purchase_amount": Decimal("20.00"), "attribution_days": 30, "hold_days": 14, "yearly_cap": 10,
        "weekly_review_threshold": 5,
        "conditions_de": "Ihre Freundin oder Ihr Freund meldet sich mit Ihrem Link oder Code an und kauft "
                         "innerhalb von 30 Tagen für mindestens 20 € ein. Nach 14 Tagen erhalten Sie 500 und "
                         "Ihr Freund 250 Bonuspunkte. Höchstens 10 Empfehlungen pro Jahr werden belohnt.",
        "conditions_en": "Your friend joins with your link or code and spends at least 20 € within 30 days. "
                         "After 14 days you get 500 and your friend 250 bonus points. Up to 10 referrals a "
                         "year are rewarded.",
    })
    return program


@transaction.atomic
def seed_referrals_demo(*, partner, referrer_email: str) -> dict:
    program = seed_program()
    referrer = Member.objects.filter(email__iexact=referrer_email).first()
    if referrer is None or not program.active:
        return {"referrals": 0}
    code = services.referral_code_for(referrer)
    created = 0
    for email, first, last, state, member_days in FRIENDS:
        clicked = timezone.now()  # the friend followed Erika's link, then joined
        friend = Member.objects.filter(email__iexact=email).first()
        if friend is None:
            friend = member_enrol(email=email, first_name=first, last_name=last,
                                  joined_at=timezone.now() - timedelta(days=member_days))
        if Referral.objects.filter(referee=friend).exists():
            continue
        channel = Referral.Channel.STAFF if member_days else Referral.Channel.LINK
        referral = services.referral_attach(referee_id=friend.pk, code=code, channel=channel, started_at=clicked)
        _bring_to(referral, friend, state, partner)
        created += 1
    return {"referrals": created}


def _bring_to(referral: Referral, friend: Member, state: str, partner) -> None:
    from rewards.purchases import purchase_record

    if state == Referral.Status.PENDING:
        return
    if state == Referral.Status.EXPIRED:
        Referral.objects.filter(pk=referral.pk).update(started_at=timezone.now() - timedelta(days=40))
        services.referrals_expire_due()
        return
    if state == Referral.Status.REJECTED:
        services.referral_reject(referral_id=referral.pk, staff_user=None,
                                 reason="Kundin seit Langem, kein neues Mitglied.")
        return
    purchase_record(member_id=friend.pk, partner=partner, order_reference=f"DEMO-REF-{friend.pk}",
                    amount=Decimal("34.90"))
    if state == Referral.Status.REWARDED:
        Referral.objects.filter(pk=referral.pk).update(payable_at=timezone.now())  # the hold period is over
        services.referral_pay(referral_id=referral.pk)
