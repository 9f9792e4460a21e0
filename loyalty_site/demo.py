"""Demo data of every app, in order (the top layer wires the apps together): tiers, the demo
partner with stores and earning rules, the catalogue, members with a year of purchases, the
demo logins, then referrals, feedback and campaigns, and a partner API key. Idempotent.
`manage.py seed_demo` runs it (`make run` does)."""

from __future__ import annotations

from campaigns.demo import seed_campaigns_demo
from engagement.demo import seed_engagement_demo
from feedback.demo import seed_feedback_demo
from members.demo import DEMO_MEMBER_EMAIL
from members.models import Member
from members.wallet_demo import seed_wallet_demo
from offers.demo import seed_offers_demo
from partners.services import demo_partner_key
from referrals.demo import seed_referrals_demo
from rewards.demo import (
    ensure_demo_logins,
    seed_catalogue_basics,
    seed_members,
    seed_memberships_demo,
    seed_rewards_catalogue,
)
from rewards.models import Purchase


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


def _seed_later_features(partner) -> dict:
    """Demo data of the other apps, each idempotent; added here as those features land."""
    seed_referrals_demo(partner=partner, referrer_email=DEMO_MEMBER_EMAIL)
    seed_feedback_demo()
    seed_campaigns_demo()
    seed_memberships_demo(partner)
    seed_offers_demo(partner=partner)  # after campaigns: a coupon for one of its segments
    seed_wallet_demo()
    engagement = seed_engagement_demo(member_email=DEMO_MEMBER_EMAIL)
    return {"api_key": demo_partner_key(partner), **engagement}
