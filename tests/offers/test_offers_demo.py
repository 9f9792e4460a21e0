"""The demo coupons: Bio-Woche for organic buyers who consent, a store bonus for everyone, the
coffee lovers' coupon; Erika sees hers (one used on a purchase that names it); a second run adds
nothing."""

from __future__ import annotations

from members.demo import DEMO_MEMBER_EMAIL
from members.models import ConsentRecord, Member
from members.services import consent_given
from offers.demo import seed_offers_demo
from offers.models import MemberOffer, Offer, OfferUse
from offers.selectors import offer_results
from rewards.demo import ensure_demo_logins, seed_catalogue_basics, seed_members, seed_rewards_catalogue
from rewards.models import PurchasePoints


def test_demo_offers_are_assigned_and_a_second_run_adds_nothing(db):
    partner, stores = seed_catalogue_basics()
    seed_rewards_catalogue()
    seed_members(count=20, partner=partner, stores=stores)
    ensure_demo_logins(partner, stores)
    first = seed_offers_demo(partner=partner)
    assert first["offers"] == 2 and first["coupons_assigned"] > 0  # no coffee segment without the campaigns demo
    organic = Offer.objects.get(name_de__startswith="Bio-Woche")
    chosen = Member.objects.filter(offers__offer=organic)
    assert chosen.exists()
    assert all(consent_given(member, ConsentRecord.Purpose.PERSONALISED) for member in chosen)
    assert offer_results(organic).treated.size + offer_results(organic).holdout.size == chosen.count()

    erika = Member.objects.get(email__iexact=DEMO_MEMBER_EMAIL)
    coupon = MemberOffer.objects.get(member=erika, offer=organic)
    if not coupon.holdout:  # the holdout is drawn by lot, even for Erika
        assert coupon.uses == 1
        use = OfferUse.objects.get(member_offer=coupon)
        assert PurchasePoints.objects.filter(purchase=use.purchase, kind="offer", label_de=organic.name_de).exists()

    counts = (Offer.objects.count(), MemberOffer.objects.count(), OfferUse.objects.count())
    second = seed_offers_demo(partner=partner)
    assert second["coupons_assigned"] == 0
    assert counts == (Offer.objects.count(), MemberOffer.objects.count(), OfferUse.objects.count())
