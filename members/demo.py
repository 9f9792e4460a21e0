"""Demo data: a believable retailer ("Café & Markt Lindner") with stores in Germany, Austria and
Switzerland, a year of purchases, tiers, earning rules, consents and demo logins.

Everything goes through the services, so the demo ledger obeys the same invariants as real
data. Idempotent: a second run finds the demo partner's data and adds nothing.
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

from partners.models import Partner, Store
from rewards.demo import seed_rewards_catalogue
from rewards.models import EarningRule, Purchase, Redemption, Reward
from rewards.purchases import LineData, purchase_record

from . import services
from .models import ConsentRecord, Member, Tier

DEMO_PARTNER = "Café & Markt Lindner"
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

STORES = [
    ("BER-01", "Berlin Mitte", "Berlin", "DE"), ("MUC-01", "München Schwabing", "München", "DE"),
    ("HAM-01", "Hamburg Eppendorf", "Hamburg", "DE"), ("WEB", "Onlineshop", "Berlin", "DE"),
    ("VIE-01", "Wien Neubau", "Wien", "AT"), ("ZRH-01", "Zürich Kreis 4", "Zürich", "CH"),
]

CATEGORIES = [("Kaffee", (3, 12)), ("Backwaren", (2, 9)), ("Feinkost", (5, 40)), ("Wein", (8, 60)),
              ("Haushalt", (4, 30)), ("Geschenke", (10, 80))]


@transaction.atomic
def seed_catalogue_basics() -> tuple[Partner, list[Store]]:
    for rank, de, en, threshold, multiplier, discount, benefits_de, benefits_en in TIERS:
        Tier.objects.update_or_create(rank=rank, defaults={
            "name_de": de, "name_en": en, "threshold_points": threshold, "earn_multiplier": Decimal(multiplier),
            "discount_percent": Decimal(discount), "benefits_de": benefits_de, "benefits_en": benefits_en})
    partner, _ = Partner.objects.get_or_create(name=DEMO_PARTNER)
    stores = [Store.objects.get_or_create(partner=partner, code=code,
                                          defaults={"name": name, "city": city, "country": country})[0]
              for code, name, city, country in STORES]
    rules = [
        ({"name_de": "1 Punkt pro Euro", "name_en": "1 point per euro", "effect": "base", "value": 1,
          "currency": "EUR", "priority": 10}, None),
        ({"name_de": "1 Punkt pro Franken", "name_en": "1 point per franc", "effect": "base", "value": 1,
          "currency": "CHF", "priority": 10}, None),
        ({"name_de": "Doppelte Punkte auf Kaffee", "name_en": "Double points on coffee", "effect": "multiplier",
          "value": 2, "category": "Kaffee", "priority": 50}, None),
        ({"name_de": "Doppelte Punkte am Wochenende", "name_en": "Double points at the weekend",
          "effect": "multiplier", "value": 2, "weekdays": "5,6", "priority": 40}, None),
        ({"name_de": "50 Bonuspunkte ab 100 €", "name_en": "50 bonus points from 100 €", "effect": "bonus",
          "value": 50, "min_amount": Decimal("100"), "priority": 30, "cap_points": 200, "cap_period": "month"}, None),
    ]
    for fields, _unused in rules:
        EarningRule.objects.get_or_create(name_de=fields["name_de"], defaults={**fields, "active": True})
    return partner, stores


_FAKERS: dict[str, Faker] = {}


def _faker_for(country: str) -> Faker:
    if country not in _FAKERS:  # building a Faker costs tens of milliseconds: one per locale
        _FAKERS[country] = Faker({"DE": "de_DE", "AT": "de_AT", "CH": "de_CH"}[country])
    return _FAKERS[country]


def _random_lines(rng: random.Random) -> list[LineData]:
    lines = []
    for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
        category, (low, high) = rng.choice(CATEGORIES)
        quantity = rng.choice([1, 1, 1, 2, 3])
        amount = (Decimal(rng.randint(low * 100, high * 100)) / 100 * quantity).quantize(Decimal("0.01"))
        lines.append(LineData(amount=amount, category=category, sku=f"{category[:3].upper()}-{rng.randint(100, 999)}",
                              quantity=quantity))
    return lines


def seed_members(*, count: int, partner: Partner, stores: list[Store], seed: int = 42, stdout=None) -> int:
    """Enrol `count` members over the last 18 months with purchases up to today."""
    rng = random.Random(seed)
    existing = Member.objects.filter(purchases__partner=partner).distinct().count()
    if existing >= count * 0.9:
        return 0
    now = timezone.now()
    created = 0
    by_country = {"DE": [s for s in stores if s.country == "DE"], "AT": [s for s in stores if s.country == "AT"],
                  "CH": [s for s in stores if s.country == "CH"]}
    for index in range(count):
        country = rng.choices(["DE", "AT", "CH"], weights=[70, 18, 12])[0]
        fake = _faker_for(country)
        fake.seed_instance(seed * 100_000 + index)
        joined = now - timedelta(days=rng.randint(0, 540), minutes=rng.randint(0, 1440))
        first, last = fake.first_name(), fake.last_name()
        email = f"{first}.{last}.{index}@example.com".lower().replace(" ", "")
        with transaction.atomic():
            member = services.member_enrol(
                email=email, first_name=first, last_name=last, country=country,
                salutation=rng.choice(["ms", "mr", "ms", "mr", "diverse"]),
                street=fake.street_address(), postal_code=fake.postcode(), city=fake.city(),
                phone=fake.phone_number(), birth_date=fake.date_of_birth(minimum_age=18, maximum_age=85),
                language=rng.choices(["de", "en"], weights=[88, 12])[0], joined_at=joined,
            )
            _seed_consents(member, rng, joined)
            _seed_purchases(member, partner, by_country[country] + ([stores[3]] if country == "DE" else []), rng,
                            joined, now)
        created += 1
        if stdout and created % 250 == 0:
            stdout.write(f"  {created} members …")
    return created


def _seed_consents(member: Member, rng: random.Random, joined) -> None:
    if rng.random() < 0.6:
        ConsentRecord.objects.create(member=member, purpose=ConsentRecord.Purpose.EMAIL, granted=True,
                                     source=ConsentRecord.Source.PORTAL, text_version="2025-01",
                                     created_at=joined, confirmed_at=joined + timedelta(minutes=7))
    if rng.random() < 0.2:
        ConsentRecord.objects.create(member=member, purpose=ConsentRecord.Purpose.SMS, granted=True,
                                     source=ConsentRecord.Source.PORTAL, text_version="2025-01", created_at=joined)


def _seed_purchases(member: Member, partner: Partner, stores: list[Store], rng: random.Random, joined, now) -> None:
    # Some members shop weekly, most now and then, some never came back.
    frequency_days = rng.choice([14, 30, 45, 60, 90, 120, 180, 400, 400, 400])
    at = joined + timedelta(days=rng.randint(0, 10))
    while at < now:
        store = rng.choice(stores)
        lines = _random_lines(rng)
        amount = sum((line.amount for line in lines), Decimal(0))
        purchase_record(
            member_id=member.pk, partner=partner, order_reference=f"{store.code}-{member.pk}-{int(at.timestamp())}",
            amount=amount, currency="CHF" if store.country == "CH" else "EUR", occurred_at=at, store=store,
            channel="online" if store.code == "WEB" else "store", lines=lines, booked_at=at,
        )
        at += timedelta(days=max(1, int(rng.gauss(frequency_days, frequency_days / 3))))


def _seed_regular_shopper(member: Member, partner: Partner, stores: list[Store]) -> None:
    """The demo member shops every week or two, so the portal shows a tier, history and expiring points."""
    rng = random.Random(7)
    at, now = member.joined_at, timezone.now()
    while at < now:
        store = rng.choice(stores)
        lines = [*_random_lines(rng), LineData(amount=Decimal("24.90"), category="Wein", sku="WEI-101")]
        reference = f"{store.code}-{member.pk}-{int(at.timestamp())}"
        purchase_record(member_id=member.pk, partner=partner, order_reference=reference,
                        amount=sum((line.amount for line in lines), Decimal(0)), occurred_at=at, store=store,
                        channel="online" if store.code == "WEB" else "store", lines=lines, booked_at=at)
        at += timedelta(days=rng.randint(5, 12))


def _seed_vouchers(member: Member) -> None:
    """The demo member has an open voucher and a used one to look at."""
    from rewards.vouchers import redemption_create, voucher_consume

    if Redemption.objects.filter(member=member, source=Redemption.Source.CATALOGUE).exists():
        return
    issued = [redemption_create(member_id=member.pk, reward_id=reward.pk)
              for reward in Reward.objects.filter(name_de__in=["5 € Rabatt", "Gratis Kaffee"]).order_by("-points_cost")]
    if issued:
        voucher_consume(code=issued[-1].code, partner=Partner.objects.get(name=DEMO_PARTNER))


def ensure_demo_logins(partner: Partner, stores: list[Store]) -> tuple[str, str]:
    """A staff login (Administrator group) and a member login with a verified e-mail."""
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

    member = Member.objects.filter(email__iexact=DEMO_MEMBER_EMAIL).first()
    if member is None:
        member = services.member_enrol(email=DEMO_MEMBER_EMAIL, first_name="Erika", last_name="Mustermann",
                                       salutation="ms", street="Heidestraße 17", postal_code="51147", city="Köln",
                                       country="DE", joined_at=timezone.now() - timedelta(days=400))
        _seed_regular_shopper(member, partner, stores[:4])
    user, created = User.objects.get_or_create(username=DEMO_MEMBER_EMAIL, defaults={"email": DEMO_MEMBER_EMAIL})
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    EmailAddress.objects.update_or_create(user=user, email=DEMO_MEMBER_EMAIL,
                                          defaults={"verified": True, "primary": True})
    if member.user_id != user.pk:
        Member.objects.filter(pk=member.pk).update(user=user)
    _seed_vouchers(member)
    return DEMO_STAFF_EMAIL, DEMO_MEMBER_EMAIL


def seed_demo(*, members: int = 2000, stdout=None) -> dict:
    partner, stores = seed_catalogue_basics()
    seed_rewards_catalogue()  # before the purchases, so stamp cards fill
    created = seed_members(count=members, partner=partner, stores=stores, stdout=stdout)
    staff_email, member_email = ensure_demo_logins(partner, stores)
    extras = _seed_later_features(partner)
    purchases = Purchase.objects.filter(partner=partner).count()
    # The README's API example: the demo member has bought with the demo partner, so the demo
    # key reaches her by her API id; her customer number is presence at any partner.
    example = Member.objects.only("customer_number", "public_id").get(email__iexact=DEMO_MEMBER_EMAIL)
    return {"members_created": created, "purchases": purchases, "staff": staff_email, "member": member_email,
            "example_customer_number": example.customer_number, "example_member_id": str(example.public_id),
            **extras}


def _seed_later_features(partner: Partner) -> dict:
    """Demo data of the other apps, each idempotent; added here as those features land."""
    from partners.services import demo_partner_key
    from referrals.demo import seed_referrals_demo

    seed_referrals_demo(partner=partner, referrer_email=DEMO_MEMBER_EMAIL)
    from feedback.demo import seed_feedback_demo

    seed_feedback_demo()
    from campaigns.demo import seed_campaigns_demo

    seed_campaigns_demo()
    return {"api_key": demo_partner_key(partner)}
