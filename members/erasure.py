"""Art. 17 DSGVO: erasing a member at their request (the portal, the console, the API, the
retention job)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.events import publish

from .events import MemberErased
from .gdpr import privacy_request_record
from .models import ConsentRecord, Member, PrivacyRequest, PushSubscription
from .services import consent_current, consent_record

if TYPE_CHECKING:
    from partners.models import Partner

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
    publish(MemberErased(member_id=member.pk, partner_id=partner.pk if partner is not None else None,
                         staff_user_id=staff_user.pk if staff_user is not None else None,
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
    PushSubscription.objects.filter(member_id__in=people_ids).delete()  # the devices identify browsers
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
