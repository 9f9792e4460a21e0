"""Demo coupons: "Bio-Woche" (double points on organic products) for organic buyers who agreed to
personalised offers, a store bonus for everyone, and one for the coffee lovers' segment; each
with a holdout, so the console shows results. The demo member Erika buys organic food and has
agreed to personalised offers: she sees her coupons, one already used on a purchase (its points
breakdown names the coupon), one activated and one to activate.

Idempotent: offers are found by their German name, the assignment adds only who is missing,
the demo purchases have fixed order references. Everything goes through the services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from campaigns.models import Segment
from members.demo import DEMO_MEMBER_EMAIL
from members.models import ConsentRecord, Member
from members.services import consent_given, consent_record
from partners.models import Partner, Store
from rewards.models import Purchase
from rewards.purchases import LineData, purchase_record

from . import services
from .models import MemberOffer, Offer

ORGANIC = "Bio"
ORGANIC_BUYER_SHARE = 5  # every 5th demo member buys organic food and agrees to personalised offers


def _offers(stores: dict[str, Store]) -> list[Offer]:
    now = timezone.now()
    start, end = now - timedelta(days=3), now + timedelta(days=11)
    specs = [
        ("Bio-Woche: doppelte Punkte auf Bio-Produkte", {
            "name_en": "Organic week: double points on organic products",
            "description_de": "Für Sie, weil Sie gern Bio kaufen: doppelte Punkte auf alle Bio-Produkte, bis zu "
                              "dreimal in der Aktionswoche.",
            "description_en": "For you, because you like organic food: double points on every organic product, up "
                              "to three times during the week.",
            "effect": Offer.Effect.MULTIPLIER, "value": Decimal("2.00"), "category": ORGANIC, "uses_per_member": 3,
            "audience": Offer.Audience.HISTORY, "history_category": ORGANIC, "history_days": 90,
            "holdout_percent": 10}),
        ("Filial-Bonus Berlin Mitte: 200 Extrapunkte ab 30 €", {
            "name_en": "Berlin Mitte store bonus: 200 extra points from 30 €",
            "description_de": "Besuchen Sie uns in Berlin Mitte: ab 30 € Einkauf schenken wir Ihnen 200 Punkte.",
            "description_en": "Visit us in Berlin Mitte: spend 30 € or more and get 200 points on top.",
            "effect": Offer.Effect.BONUS, "value": Decimal("200"), "store": stores.get("BER-01"),
            "min_spend": Decimal("30.00"), "audience": Offer.Audience.EVERYONE, "holdout_percent": 10}),
    ]
    coffee = Segment.objects.filter(name__startswith="Kaffeeliebhaber").first()
    if coffee is not None:
        specs.append(("Kaffee-Coupon: dreifache Punkte auf Kaffee", {
            "name_en": "Coffee coupon: triple points on coffee",
            "effect": Offer.Effect.MULTIPLIER, "value": Decimal("3.00"), "category": "Kaffee", "uses_per_member": 2,
            "audience": Offer.Audience.SEGMENT, "segment": coffee, "holdout_percent": 15}))
    offers = []
    for name, fields in specs:
        offer, _created = Offer.objects.get_or_create(name_de=name, defaults={
            **fields, "valid_from": start, "valid_until": end})
        offers.append(offer)
    return offers


def _organic_buyers(partner: Partner, store: Store) -> list[Member]:
    """Every 5th member (and Erika) bought organic food three weeks ago and agreed to
    personalised offers: the audience the purchase history chooses."""
    members = [member for member in Member.objects.active().order_by("pk")
               if member.pk % ORGANIC_BUYER_SHARE == 0 or member.email.lower() == DEMO_MEMBER_EMAIL]
    at = timezone.now() - timedelta(days=21)
    for member in members:
        if not consent_given(member, ConsentRecord.Purpose.PERSONALISED):
            consent_record(member=member, purpose=ConsentRecord.Purpose.PERSONALISED, granted=True,
                           source=ConsentRecord.Source.PORTAL, text_version="2025-01")
        reference = f"BIO-DEMO-{member.pk}"
        if not Purchase.objects.filter(partner=partner, order_reference=reference).exists():
            purchase_record(member_id=member.pk, partner=partner, order_reference=reference,
                            amount=Decimal("18.40"), occurred_at=at, store=store, booked_at=at,
                            lines=[LineData(amount=Decimal("12.90"), category=ORGANIC, sku="BIO-201"),
                                   LineData(amount=Decimal("5.50"), category="Backwaren", sku="BAC-310")])
    return members


def _erika_uses_her_coupons(partner: Partner, store: Store, organic: Offer, bonus: Offer) -> None:
    erika = Member.objects.filter(email__iexact=DEMO_MEMBER_EMAIL).first()
    if erika is None:
        return
    coupon = MemberOffer.objects.filter(member=erika, offer=organic).first()
    if coupon is None or coupon.holdout:
        return
    services.member_offer_activate(member_id=erika.pk, member_offer_id=coupon.pk)
    reference = f"BIO-WOCHE-{erika.pk}"
    if not Purchase.objects.filter(partner=partner, order_reference=reference).exists():
        # Now: the coupon applies and the breakdown names it.
        purchase_record(member_id=erika.pk, partner=partner, order_reference=reference, amount=Decimal("31.70"),
                        store=store, lines=[LineData(amount=Decimal("21.80"), category=ORGANIC, sku="BIO-205"),
                                            LineData(amount=Decimal("9.90"), category="Kaffee", sku="KAF-120")])
    store_bonus = MemberOffer.objects.filter(member=erika, offer=bonus, holdout=False).first()
    if store_bonus is not None:
        services.member_offer_activate(member_id=erika.pk, member_offer_id=store_bonus.pk)


@transaction.atomic
def seed_offers_demo(*, partner: Partner) -> dict:
    stores = {store.code: store for store in Store.objects.filter(partner=partner)}
    store = stores.get("BER-01") or next(iter(stores.values()), None)
    if store is None:
        return {"offers": 0}
    offers = _offers(stores)
    _organic_buyers(partner, stores.get("MUC-01", store))
    assigned = sum(services.offer_assign(offer_id=offer.pk).assigned for offer in offers)
    _erika_uses_her_coupons(partner, stores.get("HAM-01", store), offers[0], offers[1])
    return {"offers": len(offers), "coupons_assigned": assigned}
