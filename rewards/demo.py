"""Demo catalogue: rewards a café-and-market chain would offer, a coffee stamp card and cashback
switched off (a programme setting staff can turn on)."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from members.models import Tier

from .models import CashbackProgram, Reward, StampCardProgram

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
]


@transaction.atomic
def seed_rewards_catalogue() -> list[Reward]:
    tiers = {tier.rank: tier for tier in Tier.objects.all()}
    rewards = []
    for name_de, name_en, kind, points, value, stock, limit, tier_rank, text_de, text_en in CATALOGUE:
        reward, _ = Reward.objects.get_or_create(name_de=name_de, defaults={
            "name_en": name_en, "kind": kind, "points_cost": points, "value": value, "stock": stock,
            "currency": "EUR" if value and kind in (Reward.Kind.AMOUNT_VOUCHER, Reward.Kind.DONATION) else "",
            "limit_per_member": limit, "min_tier": tiers.get(tier_rank) if tier_rank is not None else None,
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
