"""Every change to a referral goes through here.

The life of a referral:
1. `referral_attach`: a new member arrives with a code (share link, typed at sign-up, a till
   through the API, staff). The fraud checks run at once, so a suspicious referral shows in the
   review queue from the start. With the sign-up event it qualifies right away.
2. `referral_purchase_recorded`: the purchase service calls it for every new purchase, inside
   the purchase's transaction; the referee's first purchase of at least the programme's minimum
   within the attribution window qualifies the referral (compare-and-set pending → qualified).
3. `referral_pay`: after the hold period (beat job `referrals_release_due`, or at once without a
   hold) both members are locked in primary-key order, the referral row after them, and both
   sides are paid through the ledger services with unique references
   ("referral:<id>:referrer" / "referral:<id>:referee"): a second delivery or a second run finds
   the referral rewarded and does nothing, and the ledger would refuse a second entry anyway.
   Before paying, the qualifying purchase must still be there (a return in the hold period
   rejects the referral) and the fraud checks run again: a flagged referral waits for staff
   (`referral_approve` / `referral_reject`), it is never paid and never silently dropped.
4. `referrals_expire_due`: pending referrals past their attribution window expire.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import LoyaltyError, ReasonRequired
from core.events import publish
from core.stored_texts import both_languages, stored_text
from members.models import Member
from referrals.errors import ReferralCodeInvalid, ReferralNotAllowed, ReferralTransitionInvalid

from .events import ReferralRewarded
from .models import CODE_LENGTH, Referral, ReferralCode, ReferralProgram

logger = logging.getLogger(__name__)

LEDGER_SOURCE = "referral"
# Codes typed by staff or a till: a referee who joined up to this long before the code was
# given is still "new" (the till enrols first and adds the code a moment later).
JOINED_GRACE = timedelta(hours=24)


# --- Codes and programmes -------------------------------------------------------------------

def referral_code_for(member: Member) -> str:
    """The member's own code, created on first use (a collision of random codes is retried)."""
    existing = ReferralCode.objects.filter(member=member).values_list("code", flat=True).first()
    if existing:
        return existing
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(member=member).code
        except IntegrityError:
            existing = ReferralCode.objects.filter(member=member).values_list("code", flat=True).first()
            if existing:  # a concurrent request created it
                return existing
    raise RuntimeError("could not generate a unique referral code")


def normalise_code(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", code or "").upper()[:16]


def referrer_for_code(code: str) -> Member | None:
    code = normalise_code(code)
    if len(code) != CODE_LENGTH:
        return None
    found = ReferralCode.objects.filter(code=code).select_related("member").first()
    if found is None or found.member.status != Member.Status.ACTIVE:
        return None
    return found.member


def program_in_force(at: datetime | None = None) -> ReferralProgram | None:
    return ReferralProgram.objects.in_force(at or timezone.now()).select_related(
        "referrer_reward", "referee_reward").first()


# --- Fraud checks ---------------------------------------------------------------------------

# Providers that ignore dots in the local part, and providers where "name+anything" reaches "name".
DOTLESS_DOMAINS = {"gmail.com", "googlemail.com"}
PLUS_ALIAS_DOMAINS = DOTLESS_DOMAINS | {
    "outlook.com", "outlook.de", "hotmail.com", "hotmail.de", "live.com", "live.de", "icloud.com", "me.com",
    "mac.com", "protonmail.com", "proton.me", "pm.me", "posteo.de", "posteo.net", "mailbox.org", "fastmail.com",
    "yahoo.com", "yahoo.de",
}
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
COUNTRY_CALLING_CODES = {"DE": "49", "AT": "43", "CH": "41", "LI": "423", "LU": "352", "BE": "32", "NL": "31",
                         "FR": "33", "IT": "39", "DK": "45", "PL": "48", "CZ": "420"}


def normalise_email(email: str) -> str:
    """The mailbox an address reaches: case, gmail's ignored dots and "+" aliases removed."""
    email = (email or "").strip().lower()
    if "@" not in email:
        return email
    local, domain = email.rsplit("@", 1)
    domain = DOMAIN_ALIASES.get(domain, domain)
    if domain in PLUS_ALIAS_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def normalise_phone(phone: str, country: str = "DE") -> str:
    """Digits in international form: "+49 30 123", "0049 30/123" and "030 123" (in DE) are one number."""
    phone = (phone or "").strip()
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return ""
    if phone.startswith("+"):
        return digits
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0"):
        return COUNTRY_CALLING_CODES.get(country or "DE", "49") + digits[1:]
    return digits


def normalise_address(member: Member) -> str:
    """Street and postal code, spelled one way ("Hauptstraße 1" = "hauptstr. 1"); empty if incomplete."""
    street = (member.street or "").lower().replace("straße", "str").replace("strasse", "str")
    street = re.sub(r"[^0-9a-zäöü]", "", street)
    postal = re.sub(r"\s", "", member.postal_code or "").lower()
    if not street or not postal:
        return ""
    return f"{member.country}|{postal}|{street}"


def _person(member: Member) -> Member:
    """A merged duplicate is the same person as its survivor."""
    seen = set()
    while member.status == Member.Status.MERGED and member.merged_into_id and member.pk not in seen:
        seen.add(member.pk)
        member = Member.objects.get(pk=member.merged_into_id)
    return member


def fraud_reasons(*, program: ReferralProgram, referrer: Member, referee: Member, started_at: datetime,
                  channel: str, referral_id: int | None = None) -> list[str]:
    """Why this referral must be looked at by staff before it is paid (empty: nothing found)."""
    reasons = []
    if _person(referrer).pk == _person(referee).pk:
        reasons.append(Referral.Flag.SAME_MEMBER)
    if referrer.email and referee.email and normalise_email(referrer.email) == normalise_email(referee.email):
        reasons.append(Referral.Flag.SAME_EMAIL)
    phone = normalise_phone(referrer.phone, referrer.country)
    if phone and phone == normalise_phone(referee.phone, referee.country):
        reasons.append(Referral.Flag.SAME_PHONE)
    address = normalise_address(referrer)
    if address and address == normalise_address(referee):
        reasons.append(Referral.Flag.SAME_ADDRESS)
    # A link click comes before the sign-up; a code given by a till or staff may follow the
    # enrolment by a little.
    grace = timedelta(0) if channel == Referral.Channel.LINK else JOINED_GRACE
    if referee.joined_at < started_at - grace:
        reasons.append(Referral.Flag.EXISTING_MEMBER)
    week = Referral.objects.filter(referrer=referrer, started_at__gt=started_at - timedelta(days=7),
                                   started_at__lte=started_at)
    if referral_id is not None:
        week = week.exclude(pk=referral_id)
    if week.count() + 1 > program.weekly_review_threshold:
        reasons.append(Referral.Flag.WEEKLY_LIMIT)
    return [str(reason) for reason in reasons]


# --- Attribution ----------------------------------------------------------------------------

def _lock_members(*member_ids: int) -> dict[int, Member]:
    from rewards.ledger import members_lock

    return members_lock(member_ids)


@transaction.atomic
def referral_attach(*, referee_id: int, code: str, channel: str, started_at: datetime | None = None,
                    staff_user: AbstractBaseUser | None = None) -> Referral:
    """Record that `code`'s owner referred the member `referee_id`.

    `started_at` is the link click (remembered until sign-up); otherwise now. The same code for
    the same member again returns the first referral (a repeated sign-up confirmation)."""
    now = timezone.now()
    program = program_in_force(now)
    if program is None:
        raise ReferralNotAllowed(detail=_("there is no referral programme at the moment"))
    referrer = referrer_for_code(code)
    if referrer is None:
        raise ReferralCodeInvalid()
    if referrer.pk == referee_id:
        raise ReferralNotAllowed(detail=_("members cannot refer themselves"))
    locked = _lock_members(referrer.pk, referee_id)
    referrer, referee = locked[referrer.pk], locked.get(referee_id)
    if referee is None:
        raise ReferralNotAllowed(detail=_("the member does not exist"))
    existing = Referral.objects.filter(referee=referee).first()
    if existing is not None:
        if existing.referrer_id == referrer.pk:
            return existing
        raise ReferralNotAllowed(detail=_("the member was already referred by someone else"))
    started_at = min(started_at or now, now)
    if started_at < now - timedelta(days=program.attribution_days):
        raise ReferralNotAllowed(detail=_("the referral link has expired"))
    reasons = fraud_reasons(program=program, referrer=referrer, referee=referee, started_at=started_at,
                            channel=channel)
    referral = Referral.objects.create(
        program=program, referrer=referrer, referee=referee, code=normalise_code(code), channel=channel,
        started_at=started_at, created_at=now, review_reasons=reasons, created_by=staff_user,
    )
    if program.qualifying_event == ReferralProgram.Event.SIGNUP:
        _qualify(referral, purchase=None, at=now)
    return referral


# --- Qualification --------------------------------------------------------------------------

def _qualify(referral: Referral, *, purchase, at: datetime) -> bool:
    payable_at = at + timedelta(days=referral.program.hold_days)
    changed = Referral.objects.filter(pk=referral.pk, status=Referral.Status.PENDING).update(
        status=Referral.Status.QUALIFIED, qualified_at=at, payable_at=payable_at, qualifying_purchase=purchase)
    if not changed:
        return False
    referral.status, referral.qualified_at, referral.payable_at = Referral.Status.QUALIFIED, at, payable_at
    referral.qualifying_purchase = purchase
    if payable_at <= at:
        # Paying locks the referrer too: never while the caller (a purchase) holds the referee's
        # lock out of primary-key order. A task after commit pays it in the right order.
        from core.tasks import enqueue

        from .tasks import pay_referral

        enqueue(pay_referral, referral.pk)
    return True


def _purchase_qualifies(program: ReferralProgram, purchase) -> bool:
    from rewards.earning import to_eur

    remaining = purchase.amount - purchase.returned_amount
    return remaining > 0 and to_eur(remaining, purchase.currency) >= program.min_purchase_amount


def referral_purchase_recorded(purchase) -> Referral | None:
    """Called for each new purchase by the `PurchaseRecorded` subscriber, in the purchase's transaction
    (the referee's row is locked there). A repeated delivery of the same purchase is answered
    before this point and never reaches it; two different purchases at once are settled by the
    compare-and-set in `_qualify`."""
    referral = (Referral.objects.filter(referee_id=purchase.member_id, status=Referral.Status.PENDING)
                .select_related("program").first())
    if referral is None or referral.program.qualifying_event != ReferralProgram.Event.PURCHASE:
        return None
    if purchase.occurred_at < referral.started_at:
        return None  # history from before the referral (an import) does not count
    if purchase.occurred_at > referral.started_at + timedelta(days=referral.program.attribution_days):
        _expire(referral.pk, at=timezone.now())
        return None
    if not _purchase_qualifies(referral.program, purchase):
        return None
    return referral if _qualify(referral, purchase=purchase, at=timezone.now()) else None


def _expire(referral_id: int, *, at: datetime) -> bool:
    return bool(Referral.objects.filter(pk=referral_id, status=Referral.Status.PENDING).update(
        status=Referral.Status.EXPIRED, expired_at=at))


# --- Paying ---------------------------------------------------------------------------------

def _lock_referral(referral_id: int) -> tuple[Referral, Member, Member]:
    """Both members in primary-key order, then the referral (the documented lock order)."""
    referrer_id, referee_id = Referral.objects.values_list("referrer_id", "referee_id").get(pk=referral_id)
    members = _lock_members(referrer_id, referee_id)
    referral = (Referral.objects.select_for_update(of=("self",))
                .select_related("program", "program__referrer_reward", "program__referee_reward",
                                "qualifying_purchase").get(pk=referral_id))
    return referral, members[referrer_id], members[referee_id]


def _set_status(referral: Referral, status: str, **fields) -> None:
    if status not in Referral.TRANSITIONS[referral.status]:
        raise ReferralTransitionInvalid(status=referral.get_status_display())
    changed = Referral.objects.filter(pk=referral.pk, status=referral.status).update(status=status, **fields)
    if not changed:  # cannot happen under the row lock; kept as the compare-and-set's guard
        raise ReferralTransitionInvalid(status=referral.get_status_display())
    referral.status = status
    for name, value in fields.items():
        setattr(referral, name, value)


def _referrer_capped(referral: Referral, at: datetime) -> bool:
    cap = referral.program.yearly_cap
    if cap is None:
        return False
    year_start = timezone.localtime(at).replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    paid = Referral.objects.filter(referrer_id=referral.referrer_id, status=Referral.Status.REWARDED,
                                   referrer_capped=False, rewarded_at__gte=year_start).exclude(pk=referral.pk)
    return paid.count() >= cap


def _pay_side(referral: Referral, member: Member, side: str, *, points: int, reward) -> tuple[int, object]:
    """Points and/or a voucher for one side. Only active members are paid."""
    from rewards.ledger import points_credit
    from rewards.models import Redemption
    from rewards.vouchers import redemption_issue

    if member.status != Member.Status.ACTIVE:
        return 0, None
    paid_points, voucher = 0, None
    if points:
        points_credit(member_id=member.pk, points=points,
                      reason=stored_text("referral-bonus", program=both_languages(referral.program, "name")),
                      source=LEDGER_SOURCE, reference=f"referral:{referral.pk}:{side}")
        paid_points = points
    if reward is not None:
        voucher = redemption_issue(member_id=member.pk, reward_id=reward.pk, source=Redemption.Source.REFERRAL)
    return paid_points, voucher


@transaction.atomic
def referral_pay(*, referral_id: int, now: datetime | None = None) -> Referral:
    """Pay a qualified referral whose hold period is over. Safe to call any number of times."""
    now = now or timezone.now()
    referral, referrer, referee = _lock_referral(referral_id)
    if referral.status != Referral.Status.QUALIFIED or (referral.payable_at and referral.payable_at > now):
        return referral
    program = referral.program
    if referral.qualifying_purchase is not None and not _purchase_qualifies(program, referral.qualifying_purchase):
        _set_status(referral, Referral.Status.REJECTED, rejected_at=now,
                    reject_reason=_("The qualifying purchase was returned during the hold period."))
        return referral
    if referral.reviewed_at is None:
        reasons = fraud_reasons(program=program, referrer=referrer, referee=referee, started_at=referral.started_at,
                                channel=referral.channel, referral_id=referral.pk)
        merged = list(dict.fromkeys([*referral.review_reasons, *reasons]))
        if merged:
            if merged != referral.review_reasons:
                Referral.objects.filter(pk=referral.pk).update(review_reasons=merged)
                referral.review_reasons = merged
            return referral  # waits in the review queue
    capped = _referrer_capped(referral, now)
    referee_points, referee_voucher = _pay_side(referral, referee, "referee", points=program.referee_points,
                                                reward=program.referee_reward)
    referrer_points, referrer_voucher = (0, None) if capped else _pay_side(
        referral, referrer, "referrer", points=program.referrer_points, reward=program.referrer_reward)
    _set_status(referral, Referral.Status.REWARDED, rewarded_at=now, referrer_capped=capped,
                referee_points=referee_points, referrer_points=referrer_points,
                referee_voucher=referee_voucher, referrer_voucher=referrer_voucher)
    publish(ReferralRewarded(member_id=referrer.pk, referral_id=referral.pk, referee_id=referee.pk,
                             points=referrer_points))
    return referral


def referrals_release_due(*, now: datetime | None = None) -> int:
    """The beat job: pay every qualified referral whose hold period has ended. Each referral is
    its own transaction; one that cannot be paid now (a sold-out voucher) is retried next run."""
    now = now or timezone.now()
    # Flagged referrals wait for staff: approving one pays it.
    due = Referral.objects.filter(status=Referral.Status.QUALIFIED, payable_at__lte=now).exclude(
        Q(reviewed_at__isnull=True) & ~Q(review_reasons=[]))
    paid = 0
    for referral_id in due.order_by("payable_at", "pk").values_list("pk", flat=True).iterator():
        try:
            paid += referral_pay(referral_id=referral_id, now=now).status == Referral.Status.REWARDED
        except LoyaltyError as error:
            logger.warning("Referral %s could not be paid: %s", referral_id, error)
    return paid


@transaction.atomic
def referrals_expire_due(*, now: datetime | None = None) -> int:
    """The beat job: pending referrals whose attribution window has ended expire (set-based)."""
    now = now or timezone.now()
    expired = 0
    for program in ReferralProgram.objects.filter(referrals__status=Referral.Status.PENDING).distinct():
        cutoff = now - timedelta(days=program.attribution_days)
        expired += Referral.objects.filter(program=program, status=Referral.Status.PENDING,
                                           started_at__lt=cutoff).update(status=Referral.Status.EXPIRED,
                                                                         expired_at=now)
    return expired


# --- Review queue ---------------------------------------------------------------------------

@transaction.atomic
def referral_approve(*, referral_id: int, staff_user: AbstractBaseUser | None) -> Referral:
    """Staff looked at a flagged referral and found it fine: it goes on (and is paid if due)."""
    referral, _referrer, _referee = _lock_referral(referral_id)
    if referral.status not in Referral.OPEN_STATUSES:
        raise ReferralTransitionInvalid(status=referral.get_status_display())
    now = timezone.now()
    Referral.objects.filter(pk=referral.pk).update(reviewed_at=now, reviewed_by=staff_user)
    referral.reviewed_at, referral.reviewed_by = now, staff_user
    if referral.status == Referral.Status.QUALIFIED and (referral.payable_at is None or referral.payable_at <= now):
        return referral_pay(referral_id=referral.pk, now=now)
    return referral


@transaction.atomic
def referral_reject(*, referral_id: int, reason: str, staff_user: AbstractBaseUser | None) -> Referral:
    if not (reason or "").strip():
        raise ReasonRequired()
    referral, _referrer, _referee = _lock_referral(referral_id)
    now = timezone.now()
    _set_status(referral, Referral.Status.REJECTED, rejected_at=now, reject_reason=reason.strip(),
                reviewed_at=now, reviewed_by=staff_user)
    return referral


# --- Reads for the portal, the API and the export -------------------------------------------

def short_name(member: Member) -> str:
    """"Max M.": enough for the referrer to recognise a friend, not more."""
    first = (member.first_name or "").strip()
    initial = (member.last_name or "").strip()[:1]
    if not first and not initial:
        local, _at, domain = (member.email or "").partition("@")
        return f"{local[:1]}…@{domain}" if local and domain else _("a friend")
    return f"{first} {initial}.".strip() if initial else first


@dataclass(frozen=True)
class ReferralRow:
    referral: Referral
    friend: str
    status: str
    points: int
    voucher: str


def referrals_of(member: Member) -> list[ReferralRow]:
    """The member's referrals as the referrer, newest first, with what each earned them."""
    referrals = (Referral.objects.filter(referrer=member)
                 .select_related("referee", "referrer_voucher__reward").order_by("-created_at", "-id"))
    return [
        ReferralRow(referral=referral, friend=short_name(referral.referee), status=referral.get_status_display(),
                    points=referral.referrer_points,
                    voucher=referral.referrer_voucher.reward.name if referral.referrer_voucher else "")
        for referral in referrals
    ]


def inviter_first_name(code: str) -> str:
    """The first name of a valid code's owner, for the friend's sign-up page: only the first
    name (never the surname, the e-mail or the card number); empty for an invalid code, outside a
    programme, or when the owner gave no first name."""
    if not code or program_in_force() is None:
        return ""
    referrer = referrer_for_code(code)
    return (referrer.first_name or "").strip() if referrer is not None else ""


@dataclass(frozen=True)
class ReceivedReferral:
    """What a referred friend sees of their own referral: who invited them, what they must do
    and when the bonus arrives, or what they got and when."""

    referral: Referral
    inviter: str
    status: str
    qualifying_event: str
    min_purchase_amount: Decimal
    deadline: datetime
    hold_days: int
    points: int
    voucher: str
    arrives_at: datetime | None


def referral_received_by(member: Member | None, *, now: datetime | None = None) -> ReceivedReferral | None:
    """The member's referral as the friend, while it is open (pending or qualified) or once
    rewarded; None otherwise (no referral, rejected, expired)."""
    if member is None:
        return None
    referral = (Referral.objects.filter(referee=member, status__in=[*Referral.OPEN_STATUSES,
                                                                    Referral.Status.REWARDED])
                .select_related("referrer", "program__referee_reward", "referee_voucher__reward").first())
    if referral is None:
        return None
    now = now or timezone.now()
    program = referral.program
    if referral.status == Referral.Status.REWARDED:
        points = referral.referee_points
        voucher = referral.referee_voucher.reward.name if referral.referee_voucher else ""
    else:
        points = program.referee_points
        voucher = program.referee_reward.name if program.referee_reward else ""
    # A payable date in the past means the bonus waits for the next run or a staff check: no date.
    arrives_at = referral.payable_at if referral.payable_at and referral.payable_at > now else None
    return ReceivedReferral(
        referral=referral, inviter=(referral.referrer.first_name or "").strip() or _("a friend"),
        status=referral.status, qualifying_event=program.qualifying_event,
        min_purchase_amount=program.min_purchase_amount,
        deadline=referral.started_at + timedelta(days=program.attribution_days), hold_days=program.hold_days,
        points=points, voucher=voucher, arrives_at=arrives_at,
    )


def referrals_export(member: Member) -> list[dict]:
    """For the member's data export (Art. 15 DSGVO): referrals made and the one received."""
    rows = []
    for referral in (Referral.objects.filter(referrer=member) | Referral.objects.filter(referee=member)).select_related(
            "referee", "referrer").order_by("created_at", "id"):
        as_referrer = referral.referrer_id == member.pk
        rows.append({
            "role": "referrer" if as_referrer else "referee",
            "friend": short_name(referral.referee if as_referrer else referral.referrer),
            "code": referral.code, "channel": referral.channel, "status": referral.status,
            "started_at": referral.started_at, "created_at": referral.created_at,
            "qualified_at": referral.qualified_at, "rewarded_at": referral.rewarded_at,
            "rejected_at": referral.rejected_at, "expired_at": referral.expired_at,
            "points": referral.referrer_points if as_referrer else referral.referee_points,
        })
    return rows
