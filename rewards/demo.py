"""Demo data of rewards: the demo partner ("Café & Markt Lindner") with stores in Germany, Austria
and Switzerland, earning rules, a year of purchases, the catalogue a café-and-market chain would
offer, a coffee stamp card and cashback switched off (a programme setting staff can turn on).

Everything goes through the services, so the demo ledger obeys the same invariants as real
data. Idempotent: a second run finds the demo partner's data and adds nothing."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import LoyaltyError
from members.demo import DEMO_MEMBER_EMAIL, ensure_demo_member, ensure_demo_staff, faker_for, seed_consents, seed_tiers
from members.models import Member, Tier
from members.services import member_enrol
from partners.models import Partner, Store

from .models import CashbackProgram, Donation, DonationCause, EarningRule, Redemption, Reward, StampCardProgram
from .purchases import LineData, purchase_record

DEMO_PARTNER = "Café & Markt Lindner"

STORES = [
    ("BER-01", "Berlin Mitte", "Berlin", "DE"), ("MUC-01", "München Schwabing", "München", "DE"),
    ("HAM-01", "Hamburg Eppendorf", "Hamburg", "DE"), ("WEB", "Onlineshop", "Berlin", "DE"),
    ("VIE-01", "Wien Neubau", "Wien", "AT"), ("ZRH-01", "Zürich Kreis 4", "Zürich", "CH"),
]

CATEGORIES = [("Kaffee", (3, 12)), ("Backwaren", (2, 9)), ("Feinkost", (5, 40)), ("Wein", (8, 60)),
              ("Haushalt", (4, 30)), ("Geschenke", (10, 80))]

CATALOGUE = [
    # key (German name), English name, kind, points, value, stock, limit, min tier rank, description de/en
    ("Gratis Kaffee", "Free coffee", Reward.Kind.FREE_PRODUCT, 150, None, None, None, None,
     "Ein Kaffee Ihrer Wahl in jeder Filiale.", "A coffee of your choice in any store."),
    ("5 € Rabatt", "5 € off", Reward.Kind.AMOUNT_VOUCHER, 500, Decimal("5.00"), None, None, None,
     "5 € Rabatt auf Ihren nächsten Einkauf ab 20 €.", "5 € off your next purchase of 20 € or more."),
    ("10 % Rabatt", "10 % off", Reward.Kind.PERCENT_VOUCHER, 900, Decimal("10"), None, 2, 1,
     "10 % auf einen Einkauf, höchstens 50 € Rabatt.", "10 % off one purchase, at most 50 € off."),
    ("Kostenloser Versand", "Free delivery", Reward.Kind.FREE_PRODUCT, 300, None, None, None, None,
     "Versandkostenfrei im Onlineshop.", "Free delivery in the online shop."),
    ("VIP-Shoppingabend", "VIP shopping evening", Reward.Kind.EXPERIENCE, 2500, None, 40, 1, 2,
     "Ein Abend mit Verkostung und 20 % auf alles, für Sie und eine Begleitung.",
     "An evening with tastings and 20 % off everything, for you and a guest."),
    ("Spende an die Tafel", "Donation to the food bank", Reward.Kind.DONATION, 200, Decimal("2.00"), None, None,
     None, "Wir spenden 2 € an die örtliche Tafel.", "We donate 2 € to the local food bank."),
    ("Einen Baum pflanzen", "Plant a tree", Reward.Kind.DONATION, 500, Decimal("5.00"), None, None,
     None, "Wir spenden 5 € für einen Baum im Bergmischwald.", "We give 5 € for a tree in the mountain forest."),
]

# The causes of the donation rewards: German name, English name, organisation, website, descriptions.
CAUSES = {
    "Spende an die Tafel": ("Tafel in Ihrer Stadt", "Your local food bank", "Tafel Deutschland e. V.",
                            "https://www.tafel.de/", "Lebensmittel retten und an Menschen in Not verteilen.",
                            "Rescuing food and sharing it with people in need."),
    "Einen Baum pflanzen": ("Bäume für den Bergwald", "Trees for the mountain forest", "Bergwaldprojekt e. V.",
                            "https://www.bergwaldprojekt.de/", "Junge Bäume für einen klimastabilen Mischwald.",
                            "Young trees for a climate-resilient mixed forest."),
}


def _demo_cause(reward_name: str) -> DonationCause | None:
    if reward_name not in CAUSES:
        return None
    name_de, name_en, organisation, website, text_de, text_en = CAUSES[reward_name]
    cause, _ = DonationCause.objects.get_or_create(name_de=name_de, defaults={
        "name_en": name_en, "organisation": organisation, "website": website,
        "description_de": text_de, "description_en": text_en})
    return cause


@transaction.atomic
def seed_rewards_catalogue() -> list[Reward]:
    tiers = {tier.rank: tier for tier in Tier.objects.all()}
    rewards = []
    for name_de, name_en, kind, points, value, stock, limit, tier_rank, text_de, text_en in CATALOGUE:
        reward, _ = Reward.objects.get_or_create(name_de=name_de, defaults={
            "name_en": name_en, "kind": kind, "points_cost": points, "value": value, "stock": stock,
            "currency": "EUR" if value and kind in (Reward.Kind.AMOUNT_VOUCHER, Reward.Kind.DONATION) else "",
            "limit_per_member": limit, "min_tier": tiers.get(tier_rank) if tier_rank is not None else None,
            "cause": _demo_cause(name_de),
            "description_de": text_de, "description_en": text_en,
            "terms_de": "Nicht mit anderen Aktionen kombinierbar. Keine Barauszahlung.",
            "terms_en": "Cannot be combined with other offers. No cash value."})
        rewards.append(reward)
    coffee = rewards[0]
    StampCardProgram.objects.get_or_create(name_de="Kaffee-Stempelkarte", defaults={
        "name_en": "Coffee stamp card", "stamps_needed": 10, "category": "Kaffee",
        "mode": StampCardProgram.Mode.PER_VISIT, "reward": coffee})
    CashbackProgram.objects.get_or_create(reward=rewards[1], defaults={"threshold_points": 5000, "active": False})
    return rewards


@transaction.atomic
def seed_catalogue_basics() -> tuple[Partner, list[Store]]:
    seed_tiers()
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
          "value": 50, "min_amount": Decimal("100"), "currency": "EUR", "priority": 30, "cap_points": 200,
          "cap_period": "month"}, None),
        # A money threshold is per currency: the Swiss stores get their own rule.
        ({"name_de": "50 Bonuspunkte ab 100 CHF", "name_en": "50 bonus points from 100 CHF", "effect": "bonus",
          "value": 50, "min_amount": Decimal("100"), "currency": "CHF", "priority": 30, "cap_points": 200,
          "cap_period": "month"}, None),
    ]
    for fields, _unused in rules:
        EarningRule.objects.get_or_create(name_de=fields["name_de"], defaults={**fields, "active": True})
    return partner, stores


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
        fake = faker_for(country)
        fake.seed_instance(seed * 100_000 + index)
        joined = now - timedelta(days=rng.randint(0, 540), minutes=rng.randint(0, 1440))
        first, last = fake.first_name(), fake.last_name()
        email = f"{first}.{last}.{index}@example.com".lower().replace(" ", "")
        with transaction.atomic():
            member = member_enrol(
                email=email, first_name=first, last_name=last, country=country,
                salutation=rng.choice(["ms", "mr", "ms", "mr", "diverse"]),
                street=fake.street_address(), postal_code=fake.postcode(), city=fake.city(),
                phone=fake.phone_number(), birth_date=fake.date_of_birth(minimum_age=18, maximum_age=85),
                language=rng.choices(["de", "en"], weights=[88, 12])[0], joined_at=joined,
            )
            seed_consents(member, rng, joined)
            _seed_purchases(member, partner, by_country[country] + ([stores[3]] if country == "DE" else []), rng,
                            joined, now)
        created += 1
        if stdout and created % 250 == 0:
            stdout.write(f"  {created} members …")
    return created


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


def seed_donations(*, members: int = 40, seed: int = 11) -> int:
    """Some members gave points to the causes (the demo member among them), over the last months,
    so the console's totals per cause and month have something to show. Idempotent."""
    from rewards.vouchers import redemption_create

    if Donation.objects.exists():
        return 0
    rng = random.Random(seed)
    rewards = list(Reward.objects.filter(kind=Reward.Kind.DONATION, active=True, cause__isnull=False))
    donors = list(Member.objects.filter(status=Member.Status.ACTIVE, points_balance__gte=500)
                  .exclude(email__iexact=DEMO_MEMBER_EMAIL).order_by("pk")[:members])
    demo_member = Member.objects.filter(email__iexact=DEMO_MEMBER_EMAIL).first()
    made = 0
    for member in [demo_member, *donors] if demo_member is not None else donors:
        # The demo member gives to every cause (the portal shows both); the others to one or more.
        chosen = rewards if member is demo_member else rng.sample(rewards, k=rng.randint(1, len(rewards)))
        for reward in chosen if rewards else ():
            try:
                redemption = redemption_create(member_id=member.pk, reward_id=reward.pk)
            except LoyaltyError:
                continue
            # Spread over the last months (the ledger keeps its own booking time).
            at = timezone.now() - timedelta(days=rng.randint(0, 150))
            Donation.objects.filter(redemption=redemption).update(created_at=at)
            Redemption.objects.filter(pk=redemption.pk).update(issued_at=at)
            made += 1
    return made


def ensure_demo_logins(partner: Partner, stores: list[Store]) -> tuple[str, str]:
    """A staff login (Administrator group) and a member login with a verified e-mail, who
    shops regularly and holds vouchers."""
    staff_email = ensure_demo_staff()
    member, enrolled = ensure_demo_member()
    if enrolled:
        _seed_regular_shopper(member, partner, stores[:4])
    _seed_vouchers(member)
    seed_donations()
    return staff_email, DEMO_MEMBER_EMAIL


def seed_memberships_demo(partner: Partner) -> int:
    """The demo member bought the VIP membership in the online shop (her portal shows it);
    two more members hold one: a VIP sold at a till and an ambassador invited by staff.
    Idempotent: the sales' order references are fixed, and an invitation is made once."""
    from .models import TierMembership
    from .tier_memberships import tier_membership_invite, tier_membership_sell

    vip = Tier.objects.filter(kind=Tier.Kind.PAID).order_by("-rank").first()
    ambassador = Tier.objects.filter(kind=Tier.Kind.INVITATION).order_by("-rank").first()
    if vip is None or ambassador is None:
        return 0
    erika = Member.objects.get(email__iexact=DEMO_MEMBER_EMAIL)
    others = list(Member.objects.filter(purchases__partner=partner).exclude(pk=erika.pk).distinct()
                  .order_by("pk")[:2])
    web = Store.objects.filter(partner=partner, code="WEB").first()
    ago = timezone.now() - timedelta(days=40)
    for member, store, at in [(erika, web, ago), *[(other, None, None) for other in others[:1]]]:
        tier_membership_sell(member_id=member.pk, tier=vip, partner=partner, store=store, occurred_at=at,
                             order_reference=f"VIP-DEMO-{member.customer_number}")
    for member in others[1:]:
        if not TierMembership.objects.filter(member=member, source=TierMembership.Source.INVITATION).exists():
            tier_membership_invite(member_id=member.pk, tier=ambassador, reason="Markenbotschafterin 2026",
                                   ends=timezone.localdate() + timedelta(days=180), staff_user=None)
    return TierMembership.objects.filter(status=TierMembership.Status.ACTIVE).count()
