"""Demo campaigns for the demo retailer: segments, three finished campaigns with results, a
raffle drawn (with its proof and winners) and one open for entries, one scheduled broadcast, one
active triggered campaign and a draft push campaign.

Everything goes through the services (sent "in the past" with their `now` argument, through a
dummy e-mail backend), so the demo rows are what real sends leave behind. After each send a
few treated members shop again within the attribution window, so the results show an uplift.
Idempotent: a campaign that exists by name is left alone.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.core.mail import get_connection
from django.utils import timezone

from members.models import Member

from . import raffles, services
from .models import Campaign, Message, Segment, SegmentCondition, Variant

SEGMENTS = [
    ("Gold und Platin", "Die besten Kundinnen und Kunden.", [(1, "tier", "gte", "Gold", None)]),
    ("Kaffeeliebhaber (90 Tage)", "Haben in den letzten 90 Tagen Kaffee gekauft.",
     [(1, "category", "in", "Kaffee", 90)]),
    ("Inaktiv seit 90 Tagen", "Früher Kundschaft, seit drei Monaten nicht mehr eingekauft.",
     [(1, "days_since_purchase", "gte", "90", None)]),
    ("Österreich und Schweiz", "Mitglieder in AT und CH.", [(1, "country", "in", "AT,CH", None)]),
    ("Vielkäufer oder hoher Umsatz", "Mindestens 10 Einkäufe oder 500 € Umsatz in 12 Monaten.",
     [(1, "purchases", "gte", "10", None), (2, "spend", "gte", "500", None)]),
]

NEWSLETTER_A = ("Frühling bei Lindner, {{ first_name }}",
                "Hallo {{ first_name }},\n\nder Frühling ist da: frische Bohnen, neue Feinkost und Ihre "
                "{{ balance }} Punkte warten auf Sie.{% if points_expiring %} Übrigens: {{ points_expiring }} "
                "Punkte verfallen bis {{ points_expiring_date }}.{% endif %}\n\nIhr Team von Café & Markt Lindner",
                "Spring at Lindner, {{ first_name }}",
                "Hello {{ first_name }},\n\nspring is here: fresh beans, new delicacies and your {{ balance }} points "
                "are waiting for you.\n\nYour team at Café & Markt Lindner")
NEWSLETTER_B = ("{{ first_name }}, Ihre {{ balance }} Punkte warten",
                "Hallo {{ first_name }},\n\nmit {{ balance }} Punkten ({{ tier }}) sind Sie schon weit gekommen. "
                "Schauen Sie vorbei – diese Woche gibt es neue Frühlingssorten.\n\nIhr Team von Café & Markt Lindner",
                "{{ first_name }}, your {{ balance }} points are waiting",
                "Hello {{ first_name }},\n\nwith {{ balance }} points ({{ tier }}) you have come a long way. "
                "Drop by – new spring blends this week.\n\nYour team at Café & Markt Lindner")
COFFEE = ("100 Extrapunkte für Sie, {{ first_name }}",
          "Hallo {{ first_name }},\n\nals Dankeschön für Ihre Treue haben wir Ihnen {{ bonus_points }} Punkte "
          "gutgeschrieben. Ihr Punktestand: {{ balance }}.\n\nIhr Team von Café & Markt Lindner",
          "100 extra points for you, {{ first_name }}",
          "Hello {{ first_name }},\n\nas a thank-you we have added {{ bonus_points }} points to your account. "
          "Your balance: {{ balance }}.\n\nYour team at Café & Markt Lindner")
WINBACK = ("Wir vermissen Sie, {{ first_name }}",
           "Hallo {{ first_name }},\n\nIhr letzter Einkauf war am {{ last_purchase }}. Mit diesem Gutschein "
           "({{ voucher_name }}) sparen Sie beim nächsten Besuch: {{ voucher_code }}, gültig bis "
           "{{ voucher_valid_until }}.\n\nIhr Team von Café & Markt Lindner",
           "We miss you, {{ first_name }}",
           "Hello {{ first_name }},\n\nyour last visit was on {{ last_purchase }}. Save on your next one with this "
           "voucher ({{ voucher_name }}): {{ voucher_code }}, valid until {{ voucher_valid_until }}.\n\n"
           "Your team at Café & Markt Lindner")
RAFFLE = ("Gewinnen Sie einen VIP-Shoppingabend",
          "Hallo {{ first_name }},\n\nwir verlosen drei VIP-Shoppingabende für je zwei Personen. Mitmachen kostet "
          "{{ raffle_entry_points }} Punkte: {{ raffle_url }}\n\nIhr Team von Café & Markt Lindner",
          "Win a VIP shopping evening",
          "Hello {{ first_name }},\n\nwe are raffling three VIP shopping evenings for two. Entry costs "
          "{{ raffle_entry_points }} points: {{ raffle_url }}\n\nYour team at Café & Markt Lindner")
COFFEE_RAFFLE = ("Gratis-Kaffee zu gewinnen",
                 "Hallo {{ first_name }},\n\nwir verlosen zehn Gutscheine für einen Gratis-Kaffee. Mitmachen ist "
                 "kostenlos: {{ raffle_url }}\n\nIhr Team von Café & Markt Lindner",
                 "Win a free coffee",
                 "Hello {{ first_name }},\n\nwe are raffling ten vouchers for a free coffee. Taking part is free: "
                 "{{ raffle_url }}\n\nYour team at Café & Markt Lindner")
SUMMER = ("Einladung zum Sommerfest",
          "Hallo {{ first_name }},\n\nam Samstag feiern wir den Sommer in allen Filialen – mit Verkostung und "
          "doppelten Punkten auf alles.\n\nIhr Team von Café & Markt Lindner",
          "You are invited to our summer party",
          "Hello {{ first_name }},\n\nthis Saturday we celebrate summer in every store – with tastings and double "
          "points on everything.\n\nYour team at Café & Markt Lindner")
BIRTHDAY = ("Alles Gute zum Geburtstag, {{ first_name }}!",
            "Hallo {{ first_name }},\n\nherzlichen Glückwunsch! Zum Geburtstag schenken wir Ihnen {{ bonus_points }} "
            "Punkte.\n\nIhr Team von Café & Markt Lindner",
            "Happy birthday, {{ first_name }}!",
            "Hello {{ first_name }},\n\nhappy birthday! We are giving you {{ bonus_points }} points.\n\n"
            "Your team at Café & Markt Lindner")


WEEKEND_PUSH = ("Doppelte Punkte am Wochenende",
                "{{ first_name }}, am Samstag und Sonntag sammeln Sie doppelte Punkte bei Lindner.",
                "Double points this weekend",
                "{{ first_name }}, collect double points at Lindner on Saturday and Sunday.")


def _segments() -> dict[str, Segment]:
    segments = {}
    for name, description, rows in SEGMENTS:
        segment, created = Segment.objects.get_or_create(name=name, defaults={"description": description})
        if created:
            SegmentCondition.objects.bulk_create(
                SegmentCondition(segment=segment, group=group, field=field, operator=operator, value=value, days=days)
                for group, field, operator, value, days in rows)
        segments[name] = segment
    return segments


def _campaign(name: str, variants: list[tuple[str, int, tuple]], **fields) -> tuple[Campaign, bool]:
    existing = Campaign.objects.filter(name=name).first()
    if existing is not None:
        return existing, False
    campaign = Campaign.objects.create(name=name, **fields)
    for variant_name, weight, (subject_de, body_de, subject_en, body_en) in variants:
        Variant.objects.create(campaign=campaign, name=variant_name, weight=weight, subject_de=subject_de,
                               body_de=body_de, subject_en=subject_en, body_en=body_en)
    return campaign, True


def _send_in_the_past(campaign: Campaign, days_ago: int) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    services.campaign_launch(campaign_id=campaign.pk, now=at, dispatch=False)
    services.campaign_run_inline(campaign_id=campaign.pk, now=at,
                                 email_connection=get_connection("django.core.mail.backends.dummy.EmailBackend"))


def _shop_after(campaign: Campaign, rng: random.Random, share: float) -> int:
    """Some members who got the message come back to shop within the attribution window."""
    from partners.models import Partner
    from rewards.demo import DEMO_PARTNER
    from rewards.purchases import LineData, purchase_record

    partner = Partner.objects.filter(name=DEMO_PARTNER).first()
    stores = list(partner.stores.exclude(country="CH")) if partner else []
    if not stores:
        return 0
    shopped = 0
    treated = Message.objects.filter(campaign=campaign, status=Message.Status.SENT).select_related("member")
    for message in treated.iterator():
        if rng.random() >= share or message.member.status != Member.Status.ACTIVE:
            continue
        at = message.processed_at + timedelta(days=rng.randint(1, max(1, campaign.attribution_days - 2)),
                                              hours=rng.randint(8, 18))
        if at >= timezone.now():
            continue
        amount = Decimal(rng.randint(1200, 6800)) / 100
        store = rng.choice(stores)
        purchase_record(member_id=message.member_id, partner=partner, store=store, occurred_at=at, booked_at=at,
                        order_reference=f"CMP{campaign.pk}-{message.member_id}", amount=amount,
                        lines=[LineData(amount=amount, category="Kaffee", sku="KAF-200")])
        shopped += 1
    return shopped


def _raffle(segments: dict[str, Segment], rng: random.Random) -> Campaign | None:
    from rewards.models import Reward

    prize = Reward.objects.filter(name_de="VIP-Shoppingabend").first()
    sent_at = timezone.now() - timedelta(days=30)
    campaign, created = _campaign("Verlosung: VIP-Shoppingabend", [("A", 1, RAFFLE)], kind=Campaign.Kind.RAFFLE,
                                  segment=segments["Gold und Platin"], holdout_percent=0, entry_points=100,
                                  winners_count=3, prize=prize, entry_deadline=sent_at + timedelta(days=14))
    if not created:
        return campaign
    _send_in_the_past(campaign, 30)
    invited = list(Message.objects.filter(campaign=campaign, status=Message.Status.SENT)
                   .select_related("member").order_by("pk"))
    able = [message for message in invited if message.member.points_balance >= 100]
    # About 40 % of those who can pay enter; at least one, so the drawn raffle has a winner to show
    # (a small demo, or an unlucky draw of the dice, would leave it empty).
    entering = [message for message in able if rng.random() < 0.4] or able[:1]
    for message in entering:
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=message.member_id,
                              now=sent_at + timedelta(days=rng.randint(0, 13)))
    raffles.raffle_draw(campaign_id=campaign.pk, now=sent_at + timedelta(days=15))
    return campaign


def _open_raffle(rng: random.Random) -> Campaign:
    """A raffle still taking entries: its seed hash is published, some members have entered
    (the demo login has not, so the portal shows the button)."""
    from members.demo import DEMO_MEMBER_EMAIL
    from rewards.models import Reward

    sent_at = timezone.now() - timedelta(days=5)
    campaign, created = _campaign("Verlosung: Gratis-Kaffee", [("A", 1, COFFEE_RAFFLE)], kind=Campaign.Kind.RAFFLE,
                                  holdout_percent=0, winners_count=10,
                                  prize=Reward.objects.filter(name_de="Gratis Kaffee").first(),
                                  entry_deadline=timezone.now() + timedelta(days=10))
    if not created:
        return campaign
    _send_in_the_past(campaign, 5)
    invited = Message.objects.filter(campaign=campaign).exclude(member__email=DEMO_MEMBER_EMAIL).order_by("pk")
    for member_id in invited.values_list("member_id", flat=True):
        if rng.random() < 0.3:
            raffles.raffle_enter(campaign_id=campaign.pk, member_id=member_id,
                                  now=sent_at + timedelta(days=rng.randint(0, 4), hours=rng.randint(1, 20)))
    return campaign


def seed_campaigns_demo(*, seed: int = 11) -> dict:
    """Create the demo segments and campaigns (idempotent). Call after the demo members exist."""
    rng = random.Random(seed)
    segments = _segments()
    from rewards.models import Reward

    voucher = Reward.objects.filter(name_de="5 € Rabatt").first()
    created = []
    newsletter, new = _campaign("Frühlings-Newsletter", [("A", 1, NEWSLETTER_A), ("B", 1, NEWSLETTER_B)],
                                segment=segments["Österreich und Schweiz"], holdout_percent=10)
    if new:
        _send_in_the_past(newsletter, 60)
        _shop_after(newsletter, rng, 0.08)
        created.append(newsletter.name)
    coffee, new = _campaign("100 Extrapunkte für Kaffeeliebhaber", [("A", 1, COFFEE)],
                            segment=segments["Kaffeeliebhaber (90 Tage)"], holdout_percent=15, bonus_points=100)
    if new:
        _send_in_the_past(coffee, 40)
        _shop_after(coffee, rng, 0.10)
        created.append(coffee.name)
    winback, new = _campaign("Wir vermissen Sie", [("A", 1, WINBACK)], segment=segments["Inaktiv seit 90 Tagen"],
                             holdout_percent=20, reward=voucher, attribution_days=21)
    if new:
        _send_in_the_past(winback, 25)
        _shop_after(winback, rng, 0.12)
        created.append(winback.name)
    raffle = _raffle(segments, rng)
    open_raffle = _open_raffle(rng)
    summer, new = _campaign("Einladung zum Sommerfest", [("A", 1, SUMMER)], holdout_percent=10,
                            scheduled_at=timezone.now() + timedelta(days=7))
    if new:
        services.campaign_launch(campaign_id=summer.pk)
        created.append(summer.name)
    birthday, new = _campaign("Geburtstagsgruß", [("A", 1, BIRTHDAY)], kind=Campaign.Kind.TRIGGERED,
                              trigger=Campaign.Trigger.BIRTHDAY, holdout_percent=10, bonus_points=200)
    if new:
        services.campaign_launch(campaign_id=birthday.pk)
        created.append(birthday.name)
    # A push campaign to try the channel (a draft: the demo's members have no devices; subscribe a
    # browser on the portal's profile page first, see README "The portal as an app").
    push, new = _campaign("Doppelte Punkte am Wochenende (Push)", [("A", 1, WEEKEND_PUSH)],
                          channel=Campaign.Channel.PUSH, holdout_percent=10)
    if new:
        created.append(push.name)
    return {"segments": len(segments), "campaigns_created": created, "raffle": raffle.pk if raffle else None,
            "open_raffle": open_raffle.pk}
