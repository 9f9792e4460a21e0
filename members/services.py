"""Members: enrolment, status, consents, merging duplicates, erasure and export.

The tier engine is rewards' (rewards/tiers.py); the Tier and TierHistory models stay here.
Members imports no other domain app: a merge or an erasure publishes `MembersMerged` /
`MemberErased` and each app handles its own rows in a subscriber, in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.events import publish
from core.public import public_url
from members.errors import DuplicateMember, InvalidMerge, MemberNotActive

from .events import MemberEnrolled
from .models import (
    ConsentRecord,
    Member,
    MemberCode,
    PartnerRelation,
    Tier,
    TierHistory,
    generate_member_code,
    hash_member_code,
)

if TYPE_CHECKING:
    from partners.models import Partner, Store

# --- Enrolment and status ------------------------------------------------------------------

ENROL_FIELDS = ("salutation", "first_name", "last_name", "phone", "birth_date", "street", "postal_code", "city",
                "country", "language")


@transaction.atomic
def member_enrol(*, email: str = "", customer_number: str | None = None, joined_at=None,
                 partner: Partner | None = None, store: Store | None = None, via: str | None = None,
                 **fields) -> Member:
    """Create a member on the entry tier. E-mail and customer number must be new. Enrolled by a
    partner (through the API), the member is related to it (and the store) from then on.
    Publishes `MemberEnrolled` (`via`: see there; "api" with a partner, else "console")."""
    unknown = set(fields) - set(ENROL_FIELDS)
    if unknown:
        raise TypeError(f"unknown member fields: {sorted(unknown)}")
    email = email.strip()
    if email and Member.objects.filter(email__iexact=email).exists():
        raise DuplicateMember(field=_("e-mail"))
    if customer_number and Member.objects.filter(customer_number=customer_number).exists():
        raise DuplicateMember(field=_("customer number"))
    member = Member(email=email, tier=entry_tier(), **fields)
    if customer_number:
        member.customer_number = customer_number
    if joined_at:
        member.joined_at = joined_at
    try:
        with transaction.atomic():
            member.save(force_insert=True)
    except IntegrityError as error:  # a concurrent enrolment with the same e-mail or number
        raise DuplicateMember(field=_("e-mail or customer number")) from error
    if member.tier is not None:
        TierHistory.objects.create(member=member, to_tier=member.tier, cause=TierHistory.Cause.ENROLMENT)
    if partner is not None:
        partner_relation_record(member_id=member.pk, partner_id=partner.pk, store_id=store.pk if store else None,
                                via=PartnerRelation.Via.ENROLMENT)
    publish(MemberEnrolled(member_id=member.pk, partner_id=partner.pk if partner is not None else None,
                           via=via or ("api" if partner is not None else "console"),
                           customer_number=member.customer_number, card_number=member.card_number))
    return member


def partner_relation_record(*, member_id: int, partner_id: int, store_id: int | None, via: str) -> None:
    """The member is related to the partner (at the store) from now on; nothing if they were.
    Runs in the caller's transaction (enrolment, purchase): no savepoint of its own, so the
    purchase path pays one INSERT for a member's first purchase at a store and nothing after."""
    PartnerRelation.objects.bulk_create(
        [PartnerRelation(member_id=member_id, partner_id=partner_id, store_id=store_id, via=via)],
        ignore_conflicts=True)


@transaction.atomic
def member_code_issue(*, member_id: int) -> tuple[MemberCode, str]:
    """A fresh code that proves the member's presence to a partner for LOYALTY_MEMBER_CODE_MINUTES.
    Returns the row and the code itself (only its hash is stored). The member's earlier codes
    stop working: one live code per member, so a screenshot shared earlier is worthless."""
    member = Member.objects.select_for_update().only("pk", "status").get(pk=member_id)
    if member.status != Member.Status.ACTIVE:
        raise MemberNotActive(status=member.get_status_display())
    MemberCode.objects.filter(member_id=member.pk).delete()
    while True:
        code = generate_member_code()
        try:
            with transaction.atomic():
                row = MemberCode.objects.create(
                    member_id=member.pk, purpose=MemberCode.Purpose.PRESENCE, code_hash=hash_member_code(code),
                    expires_at=timezone.now() + timedelta(minutes=settings.LOYALTY_MEMBER_CODE_MINUTES))
        except IntegrityError:  # the same 50 random bits as a live code: draw again
            continue
        return row, code


def entry_tier() -> Tier | None:
    return Tier.objects.points_based().order_by("rank").first()


@transaction.atomic
def member_set_status(*, member_id: int, status: str, staff_user: AbstractBaseUser | None = None) -> Member:
    """Block or unblock (or close) a member. Merged and erased members stay as they are."""
    member = Member.objects.select_for_update().get(pk=member_id)
    if member.status in (Member.Status.MERGED, Member.Status.ERASED):
        raise InvalidMerge(detail=_("the member was merged or erased"))
    member.status = status
    member.save(update_fields=["status", "updated_at"])
    return member


# --- Consents ------------------------------------------------------------------------------

def consents_latest(member_ids: Iterable[int], purposes: Iterable[str] | None = None,
                    ) -> dict[tuple[int, str], ConsentRecord]:
    """(member id, purpose) -> the latest record, for many members in one query: the record
    that counts, whatever came before it."""
    records = ConsentRecord.objects.filter(member_id__in=list(member_ids))
    if purposes is not None:
        records = records.filter(purpose__in=set(purposes))
    latest: dict[tuple[int, str], ConsentRecord] = {}
    for record in records.order_by("member_id", "purpose", "-created_at", "-id"):
        latest.setdefault((record.member_id, record.purpose), record)
    return latest


def consent_current(member: Member) -> dict[str, ConsentRecord | None]:
    """The latest record per purpose (None: never asked)."""
    latest = consents_latest([member.pk])
    return {purpose: latest.get((member.pk, purpose)) for purpose in ConsentRecord.Purpose.values}


def consent_given(member: Member, purpose: str) -> bool:
    record = consent_current(member)[purpose]
    return record is not None and record.is_effective


@transaction.atomic
def consent_record(
    *, member: Member, purpose: str, granted: bool, source: str, text_version: str = "", ip_address: str | None = None,
    confirmed_at=None, staff_user: AbstractBaseUser | None = None,
) -> ConsentRecord:
    """Append a consent or withdrawal. E-mail consent without proof of confirmation waits for
    the double opt-in: the record carries a token that `consent_confirm` redeems."""
    needs_opt_in = granted and purpose == ConsentRecord.Purpose.EMAIL and confirmed_at is None
    return ConsentRecord.objects.create(
        member=member, purpose=purpose, granted=granted, source=source, text_version=text_version,
        ip_address=ip_address, confirmed_at=confirmed_at, created_by=staff_user,
        confirmation_token=secrets.token_urlsafe(32) if needs_opt_in else "",
    )


@transaction.atomic
def consent_confirm(*, token: str, ip_address: str | None = None) -> ConsentRecord | None:
    """Double opt-in: confirming appends a confirmed record, if the pending one is still the latest."""
    pending = ConsentRecord.objects.filter(confirmation_token=token, confirmed_at__isnull=True).first()
    if not token or pending is None:
        return None
    latest = consent_current(pending.member)[pending.purpose]
    if latest is None or latest.pk != pending.pk:
        return None  # withdrawn or superseded since
    return ConsentRecord.objects.create(
        member=pending.member, purpose=pending.purpose, granted=True, source=pending.source,
        text_version=pending.text_version, ip_address=ip_address, confirmed_at=timezone.now(),
    )


# --- Portal: accounts, profile, consent preferences, erasure and export (DSGVO) ---------------
#
# The member portal (members/views.py) calls these. A portal login is a Django user with a
# verified e-mail (django-allauth); the member behind it is found or created here, never twice.

PROFILE_FIELDS = ("salutation", "first_name", "last_name", "phone", "birth_date", "street", "postal_code", "city",
                  "country", "language")


@transaction.atomic
def member_link_or_enrol(*, user: AbstractBaseUser, email: str, language: str = "de",
                         via: str = "portal") -> Member | None:
    """The member for a portal user whose `email` has just been verified.

    A till or an import may already know this person by e-mail: that member gets the login
    instead of a duplicate. Only a verified address may claim a member, or anyone could take
    over a stranger's points by signing up with their e-mail. Staff accounts never get one.
    `via` names the path of a new member's `MemberEnrolled` ("console": staff verified it)."""
    if getattr(user, "is_staff", False):
        return None
    existing = Member.objects.filter(user=user).first()
    if existing is not None:
        return existing
    email = email.strip()
    candidate = Member.objects.select_for_update().filter(email__iexact=email).first() if email else None
    if candidate is not None and not candidate.email_confirmed:
        # Staff typed this address into the console and its owner has not used the confirmation
        # link yet: no link, and no new member either (it would keep this login from its member
        # for good). The portal asks for the confirmation and links on the next visit after it.
        return None
    if candidate is not None and candidate.status == Member.Status.MERGED and candidate.merged_into_id:
        candidate = Member.objects.select_for_update().get(pk=candidate.merged_into_id)
    first_name, last_name = _signup_name(user)
    if candidate is not None and candidate.user_id is None and candidate.status != Member.Status.ERASED:
        changes = {"user": user}
        # The sign-up's name fills only what the member lacks: never overwrite what staff entered.
        if first_name and not candidate.first_name:
            changes["first_name"] = first_name
        if last_name and not candidate.last_name:
            changes["last_name"] = last_name
        Member.objects.filter(pk=candidate.pk).update(**changes)
        for name, value in changes.items():
            setattr(candidate, name, value)
        return candidate
    if candidate is not None:
        # The address belongs to a member with another login (who has since changed their
        # login address): enrol without the e-mail rather than take their member away.
        email = ""
    language = language if language in Member.Language.values else Member.Language.GERMAN
    member = member_enrol(email=email, language=language, via=via, first_name=first_name, last_name=last_name)
    Member.objects.filter(pk=member.pk).update(user=user)
    member.user = user
    return member


def _signup_name(user: AbstractBaseUser) -> tuple[str, str]:
    """The name given on the sign-up form, kept on the user until the address is verified,
    cut to the member's field lengths (the user's fields are longer)."""
    first = (getattr(user, "first_name", "") or "").strip()[:Member._meta.get_field("first_name").max_length]
    last = (getattr(user, "last_name", "") or "").strip()[:Member._meta.get_field("last_name").max_length]
    return first, last


@transaction.atomic
def member_update_profile(*, member_id: int, **fields) -> Member:
    """The member edits their own personal data (not the e-mail: that is the verified login)."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"unknown profile fields: {sorted(unknown)}")
    member = Member.objects.select_for_update(of=("self",)).get(pk=member_id)
    for name, value in fields.items():
        setattr(member, name, value.strip() if isinstance(value, str) else value)
    member.save(update_fields=[*fields, "updated_at"])  # a model save: the audit trail records it
    return member


@transaction.atomic
def consent_preferences_update(
    *, member: Member, choices: dict[str, bool], source: str, ip_address: str | None, text_version: str,
    confirm_base_url: str = "",
) -> list[ConsentRecord]:
    """Record the member's answer per channel, one record per change (Art. 7 DSGVO).

    An unchanged answer writes nothing, so the history shows decisions, not page saves; a first
    answer is recorded even when it is "no". Granting e-mail marketing starts the double opt-in:
    the confirmation mail goes out after commit with a link built on `confirm_base_url`."""
    current = consent_current(member)
    created = []
    for purpose, wanted in choices.items():
        if purpose not in current:
            raise ValueError(f"unknown consent purpose: {purpose}")
        latest = current[purpose]
        if latest is not None and latest.granted == bool(wanted):
            continue  # no change; an e-mail consent waiting for confirmation keeps waiting
        record = consent_record(member=member, purpose=purpose, granted=bool(wanted), source=source,
                                text_version=text_version, ip_address=ip_address)
        created.append(record)
        if record.confirmation_token and member.email:
            transaction.on_commit(lambda record_id=record.pk: _send_consent_confirmation(record_id, confirm_base_url))
    return created


def _send_consent_confirmation(record_id: int, base_url: str) -> None:
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils import translation

    record = ConsentRecord.objects.select_related("member").get(pk=record_id)
    member = record.member
    with translation.override(member.language):
        path = reverse("portal:consent_confirm", args=[record.confirmation_token])
        context = {"member": member, "confirm_url": base_url.rstrip("/") + path}
        send_mail(subject=_("Please confirm your newsletter subscription"),
                  message=render_to_string("emails/consent_confirm.txt", context),
                  from_email=None, recipient_list=[member.email])


# --- E-mail addresses set by staff ---------------------------------------------------------
#
# A verified portal login claims the member with the same address (member_link_or_enrol). An
# address that staff typed into the console proves nothing about who reads it: a typo or a
# caller posing as the member would let whoever signs up with it take over the member's points
# and data. So a staff change marks the address unconfirmed and mails a confirmation link to it;
# only after that link was used can a sign-up with the address claim the member.

EMAIL_CONFIRM_SALT = "members.email-confirm"
EMAIL_CONFIRM_MAX_AGE = timedelta(days=14)


def email_confirmation_token(member: Member) -> str:
    """A signed link token naming the member and the address it confirms (no table needed:
    a later change of the address makes the old token worthless)."""
    return signing.dumps({"member": member.pk, "email": member.email.lower()}, salt=EMAIL_CONFIRM_SALT)


def member_for_email_confirmation(token: str, *, lock: bool = False) -> Member | None:
    """The member whose current, unconfirmed address `token` confirms, or None (bad, expired,
    used, or the address changed since)."""
    try:
        payload = signing.loads(token, salt=EMAIL_CONFIRM_SALT, max_age=EMAIL_CONFIRM_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    members = Member.objects.select_for_update(of=("self",)) if lock else Member.objects
    member = members.filter(pk=payload.get("member"), email_confirmed=False).exclude(
        status=Member.Status.ERASED).first()
    if member is None or not member.email or member.email.lower() != payload.get("email"):
        return None
    return member


@transaction.atomic
def member_email_changed_by_staff(*, member_id: int) -> Member:
    """Staff changed the member's e-mail in the console: the address is unconfirmed until the
    link mailed to it (after commit) is used."""
    member = Member.objects.select_for_update(of=("self",)).get(pk=member_id)
    Member.objects.filter(pk=member.pk).update(email_confirmed=False)
    member.email_confirmed = False
    if member.email:
        transaction.on_commit(lambda: _send_email_confirmation(member.pk))
    return member


@transaction.atomic
def member_email_confirm(*, token: str) -> Member | None:
    """The owner of the address used the link: it counts as confirmed; a portal login with a
    verified address can claim the member from now on. None when the link is not valid."""
    member = member_for_email_confirmation(token, lock=True)
    if member is None:
        return None
    Member.objects.filter(pk=member.pk).update(email_confirmed=True)
    member.email_confirmed = True
    return member


def _send_email_confirmation(member_id: int) -> None:
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils import translation

    member = Member.objects.get(pk=member_id)
    if member.email_confirmed or not member.email:
        return
    with translation.override(member.language):
        path = reverse("portal:email_confirm", args=[email_confirmation_token(member)])
        context = {"member": member, "confirm_url": public_url(path)}
        send_mail(subject=_("Please confirm your e-mail address"),
                  message=render_to_string("emails/member_email_confirm.txt", context),
                  from_email=None, recipient_list=[member.email])
