"""Members: enrolment, status, consents, merging duplicates, erasure and export.

The tier engine is rewards' (rewards/tiers.py); the Tier and TierHistory models stay here.
Members imports no other domain app: a merge or an erasure publishes `MembersMerged` /
`MemberErased` and each app handles its own rows in a subscriber, in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.events import publish
from members.errors import DuplicateMember, InvalidMerge, MemberNotActive

from .events import MemberErased, MembersMerged
from .gdpr import export_sections
from .models import (
    ConsentRecord,
    Member,
    MemberCode,
    MemberMerge,
    PartnerRelation,
    PrivacyRequest,
    Tier,
    TierHistory,
    generate_member_code,
    hash_member_code,
)

if TYPE_CHECKING:
    from rewards.models import Partner, Store

# --- Enrolment and status ------------------------------------------------------------------

ENROL_FIELDS = ("salutation", "first_name", "last_name", "phone", "birth_date", "street", "postal_code", "city",
                "country", "language")


@transaction.atomic
def member_enrol(*, email: str = "", customer_number: str | None = None, joined_at=None,
                 partner: Partner | None = None, store: Store | None = None, **fields) -> Member:
    """Create a member on the entry tier. E-mail and customer number must be new. Enrolled by a
    partner (through the API), the member is related to it (and the store) from then on."""
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
    return member


def partner_relation_record(*, member_id: int, partner_id: int, store_id: int | None, via: str) -> None:
    """The member is related to the partner (at the store) from now on; nothing if they were.
    Runs in the caller's transaction (enrolment, purchase): no savepoint of its own, so the
    purchase path pays one INSERT for a member's first purchase at a store and nothing after."""
    PartnerRelation.objects.bulk_create(
        [PartnerRelation(member_id=member_id, partner_id=partner_id, store_id=store_id, via=via)],
        ignore_conflicts=True)


def _relations_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """The partners who knew the duplicate know the person: they keep seeing the survivor."""
    PartnerRelation.objects.bulk_create(
        [PartnerRelation(member_id=survivor_id, partner_id=relation.partner_id, store_id=relation.store_id,
                         via=relation.via, created_at=relation.created_at)
         for relation in PartnerRelation.objects.filter(member_id=duplicate_id)],
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
    return Tier.objects.order_by("rank").first()


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


# --- Merging duplicates ----------------------------------------------------------------------

@dataclass(frozen=True)
class MergeOutcome:
    merge: MemberMerge
    survivor: Member


@transaction.atomic
def member_merge(*, survivor_id: int, duplicate_id: int, reason: str = "",
                 staff_user: AbstractBaseUser | None = None) -> MergeOutcome:
    """Fold a duplicate into the survivor; the duplicate stays readable as "merged into" the
    survivor. Members moves what it holds (consents, figures, login, partner relations); every
    other app moves its own rows in a `MembersMerged` subscriber, in this transaction (rewards:
    the balance as a pair of transfer entries, purchases, vouchers, stamp cards, the tier)."""
    if survivor_id == duplicate_id:
        raise InvalidMerge(detail=_("a member cannot be merged into itself"))
    # Both rows in primary-key order (the ledger's lock order, rewards.ledger.members_lock).
    locked = {member.pk: member for member in
              Member.objects.select_for_update().filter(pk__in={survivor_id, duplicate_id}).order_by("pk")}
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    for member in (survivor, duplicate):
        if member.status in (Member.Status.MERGED, Member.Status.ERASED):
            raise InvalidMerge(detail=_("%(member)s was already merged or erased") % {"member": member})

    pending = duplicate.points_pending
    ConsentRecord.objects.filter(member=duplicate).update(member=survivor)
    Member.objects.filter(pk=survivor.pk).update(
        points_pending=F("points_pending") + pending,
        lifetime_spend=F("lifetime_spend") + duplicate.lifetime_spend,
        spend_12m=F("spend_12m") + duplicate.spend_12m,
        purchases_12m=F("purchases_12m") + duplicate.purchases_12m,
    )
    if duplicate.last_purchase_at and (survivor.last_purchase_at is None
                                       or duplicate.last_purchase_at > survivor.last_purchase_at):
        Member.objects.filter(pk=survivor.pk).update(last_purchase_at=duplicate.last_purchase_at)
    duplicate_user_id = duplicate.user_id
    Member.objects.filter(pk=duplicate.pk).update(  # the tier (and its grant) is the tier engine's: rewards
        status=Member.Status.MERGED, merged_into=survivor, points_pending=0, user=None,
    )
    # Members merged into the duplicate earlier are the same person too: point them at the
    # survivor, so `merged_into` always names the live member (qualifying points, the 360° page
    # and the ledger history follow one level, never a chain). MemberMerge keeps the history.
    Member.objects.filter(merged_into=duplicate).update(merged_into=survivor)
    if survivor.user_id is None and duplicate_user_id is not None:  # keep the person's portal login
        Member.objects.filter(pk=survivor.pk).update(user_id=duplicate_user_id)
    _relations_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk)
    # The subscribers fill in what they moved (points_moved, purchases_moved).
    merge = MemberMerge.objects.create(survivor=survivor, duplicate=duplicate, points_moved=0, pending_moved=pending,
                                       purchases_moved=0, reason=reason, created_by=staff_user)
    publish(MembersMerged(member_id=survivor.pk, duplicate_id=duplicate.pk, merge_id=merge.pk))
    merge.refresh_from_db()
    survivor.refresh_from_db()
    return MergeOutcome(merge=merge, survivor=survivor)


# --- Portal: accounts, profile, consent preferences, erasure and export (DSGVO) ---------------
#
# The member portal (members/views.py) calls these. A portal login is a Django user with a
# verified e-mail (django-allauth); the member behind it is found or created here, never twice.

PROFILE_FIELDS = ("salutation", "first_name", "last_name", "phone", "birth_date", "street", "postal_code", "city",
                  "country", "language")


@transaction.atomic
def member_link_or_enrol(*, user: AbstractBaseUser, email: str, language: str = "de") -> Member | None:
    """The member for a portal user whose `email` has just been verified.

    A till or an import may already know this person by e-mail: that member gets the login
    instead of a duplicate. Only a verified address may claim a member, or anyone could take
    over a stranger's points by signing up with their e-mail. Staff accounts never get one."""
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
    if candidate is not None and candidate.user_id is None and candidate.status != Member.Status.ERASED:
        Member.objects.filter(pk=candidate.pk).update(user=user)
        candidate.user = user
        return candidate
    if candidate is not None:
        # The address belongs to a member with another login (who has since changed their
        # login address): enrol without the e-mail rather than take their member away.
        email = ""
    language = language if language in Member.Language.values else Member.Language.GERMAN
    member = member_enrol(email=email, language=language)
    Member.objects.filter(pk=member.pk).update(user=user)
    member.user = user
    return member


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
        context = {"member": member, "confirm_url": settings.LOYALTY_PUBLIC_URL.rstrip("/") + path}
        send_mail(subject=_("Please confirm your e-mail address"),
                  message=render_to_string("emails/member_email_confirm.txt", context),
                  from_email=None, recipient_list=[member.email])


ERASED_FIELDS = {"email": "", "salutation": "", "first_name": "", "last_name": "", "phone": "", "birth_date": None,
                 "street": "", "postal_code": "", "city": ""}


@transaction.atomic
def member_erase(*, member_id: int, staff_user: AbstractBaseUser | None = None, channel: str | None = None,
                 partner: Partner | None = None) -> Member:
    """Art. 17 DSGVO: anonymise the member and remove their portal login.

    Personal data (names, contact, address, birth date, tags) is blanked and the card and
    customer numbers are replaced, so a till or a partner's CRM can no longer point at the
    person. Open vouchers are cancelled first (a till must not accept them any more; their
    points come back and are forfeited with the rest). Purchases and the ledger stay (the
    accounts must add up); the points left are forfeited with one adjustment entry, so the
    balance invariant holds and nobody counts them as a liability. Consents are withdrawn.
    Members merged into this one are the same person and are anonymised too. Copies of the
    data in logs and records elsewhere are rewritten (members.privacy). The erasure itself is
    recorded without personal data (`PrivacyRequest`: who, when, which member, which channel).
    `channel` defaults to the console when a staff user acts, else the portal. Running it twice
    changes nothing."""
    from core.audit import erase_audit_trail_of

    from .privacy import PersonalValues, erase_personal_data_elsewhere

    member = Member.objects.select_for_update().get(pk=member_id)
    if member.status == Member.Status.ERASED:
        return member
    people = [member, *member.merged_members.select_related("user")]
    values = PersonalValues.of(people)  # before anything is blanked
    # Rewards cancels the open vouchers and forfeits the points; feedback erases answers and
    # complaints. Published before the personal data is blanked, where the vouchers were cancelled.
    publish(MemberErased(member_id=member.pk, staff_user_id=staff_user.pk if staff_user is not None else None,
                         merged_member_ids=tuple(person.pk for person in people[1:])))
    member.refresh_from_db()
    channel = channel or _default_channel(staff_user)
    # The withdrawal says where the request came from; the retention job acts for the programme.
    source = {PrivacyRequest.Channel.API: ConsentRecord.Source.API,
              PrivacyRequest.Channel.PORTAL: ConsentRecord.Source.PORTAL}.get(channel, ConsentRecord.Source.STAFF)
    for purpose, latest in consent_current(member).items():
        if latest is not None and latest.granted:
            consent_record(member=member, purpose=purpose, granted=False, source=source, staff_user=staff_user)
    user_id = member.user_id
    for person in people:
        person.tags.clear()
        card_number, customer_number = values.new_numbers[person.pk]
        Member.objects.filter(pk=person.pk).update(
            **ERASED_FIELDS, card_number=card_number, customer_number=customer_number,
            status=Member.Status.ERASED if person.pk == member.pk else person.status, user=None,
            tier_granted_until=None, updated_at=timezone.now(),
        )
        erase_audit_trail_of(person)  # the trail holds the old names and addresses
    people_ids = [person.pk for person in people]
    erase_personal_data_elsewhere(people_ids, values, user_id=user_id)
    if user_id is not None:
        _user_delete(user_id)
    for left_over in _detached_logins_of(values.emails):
        _user_delete(left_over)
    privacy_request_record(member_id=member.pk, kind=PrivacyRequest.Kind.ERASURE,
                           channel=channel, staff_user=staff_user, partner=partner)
    member.refresh_from_db()
    return member


def _default_channel(staff_user: AbstractBaseUser | None) -> str:
    return PrivacyRequest.Channel.CONSOLE if staff_user is not None else PrivacyRequest.Channel.PORTAL


@transaction.atomic
def privacy_request_record(*, member_id: int, kind: str, channel: str, staff_user: AbstractBaseUser | None = None,
                           partner: Partner | None = None) -> PrivacyRequest:
    """Audit an export or erasure with no personal data: the member's id, who, when, how."""
    return PrivacyRequest.objects.create(member_id=member_id, kind=kind, channel=channel,
                                         staff_user=staff_user if staff_user is not None and staff_user.pk else None,
                                         partner=partner)


@transaction.atomic
def member_export(*, member_id: int, channel: str, staff_user: AbstractBaseUser | None = None,
                  partner: Partner | None = None) -> dict:
    """Art. 15/20 DSGVO: the member's data (`member_export_data`), with the request audited."""
    member = Member.objects.select_related("tier", "user").get(pk=member_id)
    privacy_request_record(member_id=member.pk, kind=PrivacyRequest.Kind.EXPORT, channel=channel,
                           staff_user=staff_user, partner=partner)
    return member_export_data(member)


def _detached_logins_of(emails: set[str]) -> list[int]:
    """Portal logins with one of the erased e-mail addresses that no member uses: a duplicate's
    own login is detached when it is merged into a member that already has one."""
    from django.contrib.auth import get_user_model

    if not emails:
        return []
    by_email = Q(pk__in=[])
    for email in emails:
        by_email |= Q(email__iexact=email) | Q(emailaddress__email__iexact=email)
    # `emailaddress` is allauth's e-mail address of the login.
    logins = get_user_model().objects.filter(by_email, is_staff=False, member__isnull=True)
    return list(logins.values_list("pk", flat=True).distinct())


def _user_delete(user_id: int) -> None:
    """Delete a portal login with its sessions, e-mail addresses and authenticators (cascade)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or user.is_staff:  # a staff login is never removed by a member's erasure
        return
    _sessions_delete_for(user_id)
    user.delete()


def _sessions_delete_for(user_id: int) -> int:
    """End every session of a user. Database sessions carry no user column, so this reads the
    unexpired ones: fine for a rare erasure. With a deleted user a forgotten session would be
    anonymous anyway (the user id no longer loads); this makes it certain and immediate."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import SESSION_KEY

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):
        return 0  # cookie or pure cache sessions: nothing stored server-side to search
    deleted = 0
    rows = store_class.get_model_class().objects.filter(expire_date__gt=timezone.now())
    for key, data in rows.values_list("session_key", "session_data").iterator():
        if str(store_class().decode(data).get(SESSION_KEY)) == str(user_id):
            store_class(key).delete()
            deleted += 1
    return deleted


def member_export_data(member: Member) -> dict:
    """Art. 15 and 20 DSGVO: everything we hold about the member, as JSON-ready data
    (dates and decimals are turned into text by the caller's JSON encoder)."""
    user = member.user
    people = [member.pk, *member.merged_members.values_list("pk", flat=True)]
    return {
        "format": "treuepunkt-member-export",
        "version": 1,
        "generated_at": timezone.now(),
        "profile": {
            "customer_number": member.customer_number, "card_number": member.card_number, "email": member.email,
            "salutation": member.salutation, "first_name": member.first_name, "last_name": member.last_name,
            "phone": member.phone, "birth_date": member.birth_date, "street": member.street,
            "postal_code": member.postal_code, "city": member.city, "country": member.country,
            "language": member.language, "status": member.status, "joined_at": member.joined_at,
            "tier": member.tier.name if member.tier else None, "tier_granted_until": member.tier_granted_until,
            "points_balance": member.points_balance, "points_pending": member.points_pending,
            "tags": list(member.tags.values_list("name", flat=True)),
            "portal_account": {"email": user.email, "date_joined": user.date_joined, "last_login": user.last_login}
            if user else None,
        },
        "consents": [
            {"purpose": record.purpose, "granted": record.granted, "source": record.source,
             "text_version": record.text_version, "ip_address": record.ip_address,
             "confirmed_at": record.confirmed_at, "created_at": record.created_at}
            for record in member.consents.order_by("created_at", "id")
        ],
        "tier_history": [
            {"from": change.from_tier.name if change.from_tier else None,
             "to": change.to_tier.name if change.to_tier else None, "cause": change.cause, "reason": change.reason,
             "qualifying_points": change.qualifying_points, "created_at": change.created_at}
            for change in member.tier_history.select_related("from_tier", "to_tier").order_by("created_at", "id")
        ],
        # Points, purchases, vouchers, stamp cards (rewards), referrals, feedback: members.gdpr.
        **export_sections(member, people),
    }
