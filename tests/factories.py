"""factory-boy factories for every model. Members are enrolled through the service, so they
start on the entry tier exactly as in production."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from members import services as member_services
from members.models import ConsentRecord, Member, MemberMerge, Tag, Tier, TierHistory
from partners.models import Partner, Store
from rewards.codes import generate_code
from rewards.models import (
    CashbackProgram,
    EarningRule,
    PartnerRedemption,
    PointEntry,
    Purchase,
    PurchaseLine,
    PurchasePoints,
    PurchaseReturn,
    Redemption,
    Reward,
    StampCard,
    StampCardProgram,
    StampCredit,
)
from transfers.models import ExportLog, ImportJob


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.org")
    password = factory.django.Password("correct-horse-battery")


class StaffUserFactory(UserFactory):
    is_staff = True


def staff_in(group_name: str):
    """A staff user in one of the role groups (Marketing, Support, Finance, Administrator)."""
    from django.contrib.auth.models import Group

    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name=group_name))
    return user


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier
        django_get_or_create = ("rank",)

    name_de = factory.Sequence(lambda n: f"Stufe {n}")
    name_en = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n)
    threshold_points = factory.LazyAttribute(lambda o: o.rank * 1000)


def tier_ladder() -> list[Tier]:
    return [
        TierFactory(rank=0, name_de="Basis", name_en="Basic", threshold_points=0),
        TierFactory(rank=1, name_de="Silber", name_en="Silver", threshold_points=500, discount_percent=Decimal("2")),
        TierFactory(rank=2, name_de="Gold", name_en="Gold", threshold_points=2000, earn_multiplier=Decimal("1.25"),
                    discount_percent=Decimal("5")),
        TierFactory(rank=3, name_de="Platin", name_en="Platinum", threshold_points=5000,
                    earn_multiplier=Decimal("1.50"), discount_percent=Decimal("10")),
    ]


def vip_tier(**fields) -> Tier:
    """A paid tier above the ladder: VIP for 99 EUR a year."""
    defaults = {"name_de": "VIP", "name_en": "VIP", "kind": Tier.Kind.PAID, "threshold_points": 0,
                "fee_amount": Decimal("99.00"), "fee_currency": "EUR", "duration_months": 12,
                "earn_multiplier": Decimal("2.00"), "discount_percent": Decimal("10")}
    return TierFactory(rank=fields.pop("rank", 10), **{**defaults, **fields})


def invitation_tier(**fields) -> Tier:
    """An invitation-only tier: Botschafter (ambassador)."""
    defaults = {"name_de": "Botschafter", "name_en": "Ambassador", "kind": Tier.Kind.INVITATION,
                "threshold_points": 0, "earn_multiplier": Decimal("1.50")}
    return TierFactory(rank=fields.pop("rank", 9), **{**defaults, **fields})


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag{n}")


class MemberFactory(factory.django.DjangoModelFactory):
    """A bare member row; prefer `enrolled_member()` which goes through the service."""

    class Meta:
        model = Member

    email = factory.Sequence(lambda n: f"member{n}@example.org")
    first_name = factory.Faker("first_name", locale="de_DE")
    last_name = factory.Faker("last_name", locale="de_DE")
    city = factory.Faker("city", locale="de_DE")
    postal_code = factory.Faker("postcode", locale="de_DE")
    street = factory.Faker("street_address", locale="de_DE")
    country = "DE"


_member_seq = iter(range(1, 10**9))


def enrolled_member(**fields) -> Member:
    n = next(_member_seq)
    fields.setdefault("email", f"enrolled{n}@example.org")
    fields.setdefault("first_name", "Erika")
    fields.setdefault("last_name", f"Mustermann{n}")
    return member_services.member_enrol(**fields)


def relate(member: Member, partner, store=None) -> Member:
    """The member is related to the partner (at the store), as after an enrolment or purchase there."""
    member_services.partner_relation_record(member_id=member.pk, partner_id=partner.pk,
                                            store_id=store.pk if store else None, via="enrolment")
    return member


class TierHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TierHistory

    member = factory.SubFactory(MemberFactory)
    to_tier = factory.SubFactory(TierFactory)
    cause = TierHistory.Cause.STAFF


class ConsentRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentRecord

    member = factory.SubFactory(MemberFactory)
    purpose = ConsentRecord.Purpose.EMAIL
    granted = True
    source = ConsentRecord.Source.PORTAL
    text_version = "2026-01"
    confirmed_at = factory.LazyFunction(timezone.now)


class MemberMergeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberMerge

    survivor = factory.SubFactory(MemberFactory)
    duplicate = factory.SubFactory(MemberFactory, status=Member.Status.MERGED)
    points_moved = 0
    pending_moved = 0
    purchases_moved = 0


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Partner {n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    partner = factory.SubFactory(PartnerFactory)
    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"Filiale {n}")
    city = "Berlin"


class EarningRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarningRule

    name_de = factory.Sequence(lambda n: f"Regel {n}")
    active = True
    effect = EarningRule.Effect.BASE_RATE
    value = Decimal("1")


class PurchaseFactory(factory.django.DjangoModelFactory):
    """A raw purchase row (no points); use rewards.purchases.purchase_record to earn."""

    class Meta:
        model = Purchase

    member = factory.SubFactory(MemberFactory)
    partner = factory.SubFactory(PartnerFactory)
    order_reference = factory.Sequence(lambda n: f"ORD-{n}")
    amount = Decimal("10.00")
    occurred_at = factory.LazyFunction(timezone.now)


class PurchaseLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PurchaseLine

    purchase = factory.SubFactory(PurchaseFactory)
    amount = Decimal("10.00")


class PurchasePointsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PurchasePoints

    purchase = factory.SubFactory(PurchaseFactory)
    kind = PurchasePoints.Kind.BASE
    points = 10


class PurchaseReturnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PurchaseReturn

    purchase = factory.SubFactory(PurchaseFactory)
    reference = factory.Sequence(lambda n: f"RET-{n}")
    amount = Decimal("1.00")
    points_reversed = 0


class PointEntryFactory(factory.django.DjangoModelFactory):
    """A raw ledger row, bypassing the balance: only for tests of the database's own guards."""

    class Meta:
        model = PointEntry

    member = factory.SubFactory(MemberFactory)
    kind = PointEntry.Kind.ADJUST
    points = 1


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    kind = Reward.Kind.AMOUNT_VOUCHER
    name_de = factory.Sequence(lambda n: f"Prämie {n}")
    name_en = factory.Sequence(lambda n: f"Reward {n}")
    points_cost = 100
    value = Decimal("5.00")
    currency = "EUR"


class RedemptionFactory(factory.django.DjangoModelFactory):
    """A raw voucher row; use rewards.vouchers.redemption_create to spend points."""

    class Meta:
        model = Redemption

    member = factory.SubFactory(MemberFactory)
    reward = factory.SubFactory(RewardFactory)
    points = 0
    code = factory.LazyFunction(generate_code)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class StampCardProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StampCardProgram

    name_de = factory.Sequence(lambda n: f"Stempelkarte {n}")
    stamps_needed = 3
    reward = factory.SubFactory(RewardFactory, in_catalogue=False)


class StampCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StampCard

    member = factory.SubFactory(MemberFactory)
    program = factory.SubFactory(StampCardProgramFactory)


class StampCreditFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StampCredit

    purchase = factory.SubFactory(PurchaseFactory)
    program = factory.SubFactory(StampCardProgramFactory)
    stamps = 1


class CashbackProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CashbackProgram

    threshold_points = 1000
    reward = factory.SubFactory(RewardFactory, points_cost=500, in_catalogue=False)


# --- Campaigns -----------------------------------------------------------------------------------
# (imports here so this block stays one appendable piece of a shared file)
from campaigns.models import Campaign, Message, RaffleEntry, Segment, SegmentCondition, Variant  # noqa: E402


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")


class SegmentConditionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SegmentCondition

    segment = factory.SubFactory(SegmentFactory)
    field = "country"
    operator = "in"
    value = "DE"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Kampagne {n}")
    kind = Campaign.Kind.BROADCAST
    channel = Campaign.Channel.EMAIL
    holdout_percent = 0


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    campaign = factory.SubFactory(CampaignFactory)
    name = factory.Sequence(lambda n: f"V{n}")
    subject_de = "Hallo {{ first_name }}"
    subject_en = "Hello {{ first_name }}"
    body_de = "Hallo {{ first_name }}, du hast {{ balance }} Punkte."
    body_en = "Hello {{ first_name }}, you have {{ balance }} points."


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    campaign = factory.SubFactory(CampaignFactory)
    member = factory.SubFactory(MemberFactory)
    channel = Campaign.Channel.EMAIL


class RaffleEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RaffleEntry

    campaign = factory.SubFactory(CampaignFactory, kind=Campaign.Kind.RAFFLE)
    member = factory.SubFactory(MemberFactory)


# --- Partner API (loyalty_site) -------------------------------------------------------------------
# (imports here so this block stays one appendable piece of a shared file)
from partners.models import (  # noqa: E402
    IdempotencyRecord,
    PartnerAPIKey,
    Scope,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)


class PartnerAPIKeyFactory(factory.django.DjangoModelFactory):
    """A key made by the service; the key itself (shown once in real life) is on `.raw_key`."""

    class Meta:
        model = PartnerAPIKey

    partner = factory.SubFactory(PartnerFactory)
    name = factory.Sequence(lambda n: f"Kasse {n}")
    scopes = factory.LazyFunction(lambda: list(Scope.values))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from partners.services import partner_key_create

        key, raw = partner_key_create(partner=kwargs["partner"], scopes=kwargs["scopes"], name=kwargs["name"],
                                      stores=kwargs.get("stores", ()), expiry_date=kwargs.get("expiry_date"))
        key.raw_key = raw
        return key


class IdempotencyRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdempotencyRecord

    partner = factory.SubFactory(PartnerFactory)
    key = factory.Sequence(lambda n: f"idem-{n}")
    fingerprint = "0" * 64
    method = "POST"
    path = "/api/v1/purchases/"
    response_status = 201
    response_body = "{}"


class WebhookSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookSubscription

    partner = factory.SubFactory(PartnerFactory)
    url = factory.Sequence(lambda n: f"https://hooks.example.org/{n}")
    events = factory.LazyFunction(lambda: list(WebhookEvent.values))


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    subscription = factory.SubFactory(WebhookSubscriptionFactory)
    event = WebhookEvent.POINTS_EARNED
    payload = factory.LazyFunction(lambda: {"member_id": 1})


class PartnerRedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerRedemption

    partner = factory.SubFactory(PartnerFactory)
    redemption = factory.SubFactory(RedemptionFactory)


class ImportJobFactory(factory.django.DjangoModelFactory):
    """A job record; tests of the import flow go through transfers.services.import_job_create."""

    class Meta:
        model = ImportJob

    kind = ImportJob.Kind.MEMBERS
    file_name = factory.Sequence(lambda n: f"kunden{n}.csv")
    created_by = factory.SubFactory(StaffUserFactory)


class ExportLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExportLog

    kind = ExportLog.Kind.MEMBERS
    file_format = "csv"
    row_count = 1
    created_by = factory.SubFactory(StaffUserFactory)


# --- Referrals ---------------------------------------------------------------------------------

class ReferralProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "referrals.ReferralProgram"

    name_de = "Freunde werben"
    name_en = "Refer a friend"
    conditions_de = "Beide erhalten Punkte, sobald der Freund zum ersten Mal einkauft."
    conditions_en = "You both get points as soon as your friend makes a first purchase."
    active = True
    referrer_points = 500
    referee_points = 250
    qualifying_event = "purchase"
    min_purchase_amount = Decimal("20.00")
    attribution_days = 30
    hold_days = 14
    weekly_review_threshold = 5


def referral_code(member: Member) -> str:
    from referrals.services import referral_code_for

    return referral_code_for(member)


# --- Feedback ----------------------------------------------------------------------------------

class SurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Survey"

    name = factory.Sequence(lambda n: f"Umfrage {n}")
    kind = "nps"
    question_de = "Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?"
    question_en = "How likely are you to recommend us to a friend?"
    follow_up_de = "Was ist der wichtigste Grund für Ihre Bewertung?"
    follow_up_en = "What is the main reason for your score?"


class SurveyInvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.SurveyInvitation"

    survey = factory.SubFactory(SurveyFactory)
    member = factory.LazyFunction(enrolled_member)
    reason = "manual"
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda invitation: invitation.created_at + timedelta(days=14))


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Response"

    survey = factory.SubFactory(SurveyFactory)
    score = 9
    channel = "portal"


class ComplaintFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Complaint"

    member = factory.LazyFunction(enrolled_member)
    category = "product"
    subject = "Kaffee war kalt"
    description = "Der Kaffee war kalt und die Bohnen alt."
    channel = "portal"
    created_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda complaint: complaint.created_at + timedelta(hours=48))


class BadgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "engagement.Badge"

    name_de = factory.Sequence(lambda n: f"Abzeichen {n}")
    name_en = factory.Sequence(lambda n: f"Badge {n}")
    picture = "star"


class ChallengeFactory(factory.django.DjangoModelFactory):
    """Three purchases for 100 points, running since yesterday, for everyone."""

    class Meta:
        model = "engagement.Challenge"

    name_de = factory.Sequence(lambda n: f"Herausforderung {n}")
    name_en = factory.Sequence(lambda n: f"Challenge {n}")
    goal = "purchases"
    target = Decimal("3")
    reward_points = 100
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
# --- Offers (personalised coupons) ---------------------------------------------------------------

class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "offers.Offer"

    name_de = factory.Sequence(lambda n: f"Coupon {n}")
    name_en = factory.Sequence(lambda n: f"Coupon {n} (en)")
    effect = "multiplier"
    value = Decimal("2.00")
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class MemberOfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "offers.MemberOffer"

    member = factory.LazyFunction(enrolled_member)
    offer = factory.SubFactory(OfferFactory)


def activated_coupon(member: Member, **offer_fields):
    """An assigned and activated coupon of a new offer (the state in which a purchase applies it)."""
    coupon = MemberOfferFactory(member=member, offer=OfferFactory(**offer_fields))
    coupon.activated_at = timezone.now() - timedelta(minutes=10)
    coupon.save(update_fields=["activated_at"])
    return coupon
