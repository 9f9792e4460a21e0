"""Personal data: where it lives, what erasure does to it, and how long it is kept (DSGVO).

`PERSONAL_DATA` names every model of the project (and the third-party ones holding people's
data) with what happens to it; tests/members/test_privacy.py fails when a model is added without an
entry, so nobody forgets to decide. docs/privacy.md is the processing record for people.

`retention_run` is the nightly beat job (members.tasks.apply_retention):
- members inactive for LOYALTY_RETENTION_INACTIVE_DAYS (default 3 years: no purchase, no login,
  not joined within) get a warning e-mail; LOYALTY_RETENTION_WARNING_DAYS (30) later, still
  inactive, they are erased (`member_erase`); activity after the warning cancels it;
- webhook deliveries (their payloads name members) are deleted after
  LOYALTY_RETENTION_DELIVERY_DAYS (90), idempotency records by their own job (48 hours);
- IP addresses in the audit trail are removed after LOYALTY_RETENTION_IP_DAYS (90);
- import reports (rows with names and e-mails in their messages) and any file left are cleared
  after LOYALTY_RETENTION_IMPORT_DAYS (90); expired sessions are deleted.
It returns (and logs) what it did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .models import Member

logger = logging.getLogger("loyalty_site")

ERASED = "anonymised by member_erase"
NONE = "no personal data of its own (points at a member, who is anonymised)"

PERSONAL_DATA: dict[str, str] = {
    # members
    "members.Member": ERASED + ": names, contact, address, birth date and tags blanked; card and customer "
                      "numbers replaced; the login deleted",
    "members.ConsentRecord": "kept as proof of consent and its withdrawal (Art. 7(1)); the IP address is removed",
    "members.ConsentState": NONE + "; whether the latest consent record per purpose is effective, derived from "
                            "the records by triggers (follows them)",
    "members.Tier": "no personal data",
    "members.Tag": "no personal data (the member's tags are removed)",
    "members.TierHistory": NONE,
    "members.MemberMerge": NONE,
    "transfers.ImportJob": "the erased member's values rewritten in reports and their problem lists (CSV); report "
                         "rows cleared, problem lists and file deleted after LOYALTY_RETENTION_IMPORT_DAYS",
    "transfers.ExportLog": "who exported what, how many rows; an erased member's values in the selection rewritten",
    "members.PrivacyRequest": "no personal data (which member number, who, when, which channel): kept as proof",
    "members.PartnerRelation": NONE + "; which partners (and stores) the member enrolled or bought with: the "
                               "partner API's reach (an erased member is never reached)",
    "members.PushSubscription": "a browser's push address and keys: deleted when switched off, when the push "
                                "service says it is gone, and on erasure (members.erasure)",
    "members.MemberCode": "only the hash of a code that expires within minutes (LOYALTY_MEMBER_CODE_MINUTES); "
                          "replaced by the member's next code",
    # rewards
    "rewards.StoreDayTotal": "no personal data",
    "rewards.Purchase": NONE + "; kept for the accounts", "rewards.PurchaseLine": NONE,
    "rewards.PurchaseReturn": NONE, "rewards.PurchasePoints": NONE,
    "rewards.MemberMonth": NONE + "; sums of the purchases, kept with them by triggers",
    "rewards.MemberCategory": NONE + "; derived from the purchase lines, kept with them by triggers",
    "rewards.PointEntry": NONE + "; the ledger stays consistent (remaining points forfeited by one entry); "
                          "personal values in reasons and references rewritten",
    "rewards.EarningRule": "no personal data", "rewards.Reward": "no personal data",
    "rewards.Redemption": NONE + "; open vouchers cancelled on erasure",
    "rewards.StampCardProgram": "no personal data", "rewards.StampCard": NONE,
    "rewards.StampCredit": NONE, "rewards.CashbackProgram": "no personal data",
    "rewards.PartnerRedemption": NONE,
    "rewards.TierMembership": NONE + "; kept with its fee purchase, the erased member's values in the reason "
                              "rewritten",
    "rewards.DonationCause": "no personal data", "rewards.ProgrammeSettings": "no personal data",
    "rewards.Donation": "the member link removed on erasure; cause, points, euros and date kept for the totals per "
                        "cause and the payout",
    # referrals
    "referrals.ReferralProgram": "no personal data", "referrals.ReferralCode": NONE,
    "referrals.ReferralClaim": "deleted with the login",
    "referrals.Referral": NONE + "; the erased member's values in a rejection reason rewritten",
    # campaigns
    "campaigns.Segment": "no personal data", "campaigns.SegmentCondition": "no personal data",
    "campaigns.Campaign": "no personal data", "campaigns.Variant": "no personal data",
    "campaigns.Message": "the address it was sent to is removed on erasure, error texts rewritten",
    "campaigns.RaffleEntry": NONE,
    # feedback
    "feedback.Survey": "no personal data", "feedback.SurveyInvitation": NONE,
    "feedback.Response": "comment blanked on erasure; the score stays for the statistics",
    "feedback.FollowUp": "notes blanked on erasure", "feedback.Complaint": "subject and description blanked",
    "feedback.ComplaintMessage": "texts blanked on erasure",
    # engagement
    "engagement.Badge": "no personal data", "engagement.Challenge": "no personal data",
    "engagement.ChallengeProgress": NONE, "engagement.ChallengeContribution": NONE,
    "engagement.MemberBadge": NONE,
    # offers
    "offers.Offer": "no personal data", "offers.MemberOffer": NONE + "; in the member's data export",
    "offers.OfferUse": NONE,
    # partners
    "partners.Partner": "no personal data", "partners.Store": "no personal data",
    "partners.PartnerAPIKey": "no personal data",
    "partners.IdempotencyRecord": "responses may name members: the erased member's values rewritten; purged "
                                  "after LOYALTY_API_IDEMPOTENCY_HOURS",
    "partners.WebhookSubscription": "no personal data",
    "partners.WebhookDelivery": "payloads may name members: the erased member's values rewritten; deleted "
                                "after LOYALTY_RETENTION_DELIVERY_DAYS",
    # third-party apps holding people's data
    "auth.User": "a member's login is deleted on erasure (staff logins are not members)",
    "account.EmailAddress": "deleted with the login", "account.EmailConfirmation": "deleted with the login",
    "mfa.Authenticator": "deleted with the login",
    "sessions.Session": "ended on erasure; expired ones deleted by the retention job",
    "auditlog.LogEntry": "entries about the member and their consents deleted on erasure, entries the member's "
                         "login made kept without login, e-mail and IP address; IP addresses removed after "
                         "LOYALTY_RETENTION_IP_DAYS",
    "admin.LogEntry": "the console's own log names objects by their text: rewritten for an erased member",
    "auth.Group": "no personal data (staff roles)", "auth.Permission": "no personal data",
    "contenttypes.ContentType": "no personal data",
    "rest_framework_api_key.APIKey": "no personal data (the library's key model; partners use PartnerAPIKey)",
    "django_celery_beat.SolarSchedule": "no personal data", "django_celery_beat.IntervalSchedule": "no personal data",
    "django_celery_beat.ClockedSchedule": "no personal data", "django_celery_beat.CrontabSchedule": "no personal data",
    "django_celery_beat.PeriodicTasks": "no personal data", "django_celery_beat.PeriodicTask": "no personal data",
}

# Field by field: every text, e-mail, IP address, date, JSON and file column of every model is
# either personal (with what erasure does to it) or named as not personal. tests/members/test_privacy.py
# fails when a model gains such a column that is in neither list.
BLANKED = "blanked on erasure"
REPLACED = "replaced by a new random number on erasure"
REWRITTEN = "may quote the person: their values in it are rewritten on erasure"
WITH_LOGIN = "deleted with the member's login on erasure"
ABOUT_MEMBER = "entries about the member deleted on erasure, the member's own entries rewritten"

PERSONAL_FIELDS: dict[str, dict[str, str]] = {
    "members.Member": {"customer_number": REPLACED, "card_number": REPLACED, **dict.fromkeys(
        ["email", "salutation", "first_name", "last_name", "phone", "birth_date", "street", "postal_code", "city",
         "tier_granted_until"], BLANKED)},
    "members.TierHistory": {"reason": REWRITTEN},
    "members.ConsentRecord": {"ip_address": BLANKED},
    "members.PushSubscription": dict.fromkeys(["endpoint", "p256dh", "auth", "created_at", "last_success_at"],
                                              "deleted on erasure"),
    "members.MemberMerge": {"reason": REWRITTEN},
    "transfers.ImportJob": {"file": "deleted after the import, or after LOYALTY_RETENTION_IMPORT_DAYS",
                          **dict.fromkeys(["options", "errors", "warnings", "dry_run", "message"], REWRITTEN)},
    "transfers.ExportLog": {"filters": REWRITTEN},
    "rewards.PointEntry": {"reason": REWRITTEN, "reason_params": REWRITTEN, "reference": REWRITTEN},
    "rewards.TierMembership": {"reason": REWRITTEN},
    "referrals.Referral": {"reject_reason": REWRITTEN},
    "referrals.ReferralClaim": dict.fromkeys(["code", "channel", "started_at", "created_at"], WITH_LOGIN),
    "campaigns.Message": {"to_address": BLANKED, "error": REWRITTEN},
    "feedback.Response": {"comment": BLANKED},
    "feedback.FollowUp": {"note": BLANKED},
    "feedback.Complaint": {"subject": BLANKED, "description": BLANKED},
    "feedback.ComplaintMessage": {"body": BLANKED},
    "partners.IdempotencyRecord": {"response_body": REWRITTEN},
    "partners.WebhookDelivery": {"payload": REWRITTEN, "last_error": REWRITTEN},
    "auth.User": dict.fromkeys(["password", "last_login", "username", "first_name", "last_name", "email",
                                "date_joined"], WITH_LOGIN + " (staff logins are not members)"),
    "account.EmailAddress": {"email": WITH_LOGIN},
    "account.EmailConfirmation": dict.fromkeys(["created", "sent", "key"], WITH_LOGIN),
    "mfa.Authenticator": dict.fromkeys(["type", "data", "created_at", "last_used_at"], WITH_LOGIN),
    "sessions.Session": {"session_data": "the login's sessions are deleted on erasure; expired ones nightly"},
    "auditlog.LogEntry": {**dict.fromkeys(["object_repr", "serialized_data", "changes_text", "changes",
                                           "additional_data"], ABOUT_MEMBER),
                          "actor_email": "blanked for the member's own login on erasure",
                          "remote_addr": "removed for the member on erasure; for everyone after "
                                         "LOYALTY_RETENTION_IP_DAYS"},
    "admin.LogEntry": {"object_repr": REWRITTEN, "change_message": REWRITTEN},
}

NOT_PERSONAL_FIELDS: dict[str, str] = {
    "members.Member": "country language status joined_at last_purchase_at retention_warned_at created_at updated_at",
    "members.Tier": "name_de name_en benefits_de benefits_en kind fee_currency",
    "members.Tag": "name",
    "members.TierHistory": "cause created_at",
    "members.ConsentRecord": "purpose source text_version confirmed_at confirmation_token created_at",
    "members.MemberMerge": "created_at",
    "members.ConsentState": "purpose",
    "members.PrivacyRequest": "kind channel created_at",
    "members.PartnerRelation": "via created_at",
    "members.MemberCode": "purpose code_hash expires_at created_at",
    "transfers.ImportJob": "kind status file_name encoding delimiter language created_at confirmed_at started_at "
                         "finished_at",
    "transfers.ExportLog": "kind file_format created_at",
    "partners.Partner": "name created_at",
    "partners.Store": "code name city country",
    "rewards.StoreDayTotal": "day currency reported_at",
    "rewards.Purchase": "channel order_reference currency occurred_at available_at created_at",
    "rewards.PurchaseLine": "sku category",
    "rewards.MemberMonth": "month currency",
    "rewards.MemberCategory": "category last_bought_at",
    "rewards.PurchaseReturn": "reference created_at",
    "rewards.PointEntry": "kind created_at expires_at source reason_code",
    "rewards.EarningRule": "name_de name_en valid_from valid_until effect currency channel category weekdays "
                           "cap_period created_at",
    "rewards.PurchasePoints": "kind label_de label_en",
    "rewards.ProgrammeSettings": "updated_at",
    "rewards.Reward": "kind name_de name_en description_de description_en terms_de terms_en image currency "
                      "valid_from valid_until created_at",
    "rewards.Redemption": "code status source issued_at expires_at used_at cancelled_at",
    "rewards.StampCardProgram": "name_de name_en category mode",
    "rewards.StampCard": "completed_at created_at",
    "referrals.ReferralProgram": "name_de name_en conditions_de conditions_en valid_from valid_until "
                                 "qualifying_event created_at",
    "referrals.ReferralCode": "code created_at",
    "referrals.Referral": "code channel status review_reasons started_at created_at qualified_at payable_at "
                          "rewarded_at rejected_at expired_at reviewed_at",
    "campaigns.Segment": "name description created_at updated_at",
    "campaigns.SegmentCondition": "field operator value",
    "campaigns.Campaign": "name kind trigger channel status scheduled_at entry_deadline draw_seed draw_entries_hash "
                          "draw_seed_hash seed_committed_at drawn_at prepared_at started_at finished_at "
                          "last_progress_at created_at",
    "campaigns.Variant": "name subject_de subject_en body_de body_en",
    "campaigns.Message": "occurrence channel status skip_reason queued_at claimed_at processed_at unsubscribed_at",
    "campaigns.RaffleEntry": "created_at notified_at",
    "feedback.Survey": "name kind question_de question_en follow_up_de follow_up_en trigger created_at",
    "feedback.SurveyInvitation": "reason created_at expires_at sent_at answered_at",
    "feedback.Response": "channel language created_at changed_at",
    "feedback.FollowUp": "status due_at created_at done_at",
    "feedback.Complaint": "category status channel due_at created_at updated_at resolved_at closed_at",
    "feedback.ComplaintMessage": "kind created_at emailed_at",
    "engagement.Badge": "name_de name_en description_de description_en picture created_at",
    "engagement.Challenge": "name_de name_en description_de description_en goal category sku starts_at ends_at "
                            "created_at",
    "engagement.ChallengeProgress": "completed_at reward_note updated_at",
    "engagement.ChallengeContribution": "source_key week created_at",
    "engagement.MemberBadge": "awarded_at",
    "offers.Offer": "name_de name_en description_de description_en effect category sku valid_from valid_until "
                    "audience history_category assigned_at created_at",
    "offers.MemberOffer": "assigned_at activated_at",
    "offers.OfferUse": "created_at",
    "partners.PartnerAPIKey": "prefix hashed_key created name expiry_date scopes",
    # The key is chosen by the partner (a UUID, as the API documentation asks); the fingerprint is
    # a SHA-256 of the request; the path names the member by number only.
    "partners.IdempotencyRecord": "key fingerprint method path created_at",
    "partners.WebhookSubscription": "url events secret created_at",
    "partners.WebhookDelivery": "event status last_attempt_at delivered_at created_at",
    "rewards.PartnerRedemption": "created_at",
    "rewards.TierMembership": "source status starts ends ended_at created_at",
    "rewards.DonationCause": "name_de name_en description_de description_en organisation website created_at",
    "rewards.Donation": "created_at cancelled_at",
    "sessions.Session": "expire_date",
    "auditlog.LogEntry": "object_pk cid timestamp",
    "admin.LogEntry": "action_time object_id",
    "auth.Permission": "name codename", "auth.Group": "name",
    "contenttypes.ContentType": "app_label model",
    "rest_framework_api_key.APIKey": "prefix hashed_key created name expiry_date",
    "django_celery_beat.SolarSchedule": "event", "django_celery_beat.IntervalSchedule": "period",
    "django_celery_beat.ClockedSchedule": "clocked_time",
    "django_celery_beat.CrontabSchedule": "minute hour day_of_month month_of_year day_of_week",
    "django_celery_beat.PeriodicTasks": "last_update",
    "django_celery_beat.PeriodicTask": "name task args kwargs queue exchange routing_key headers expires start_time "
                                       "last_run_at date_changed description",
}


# --- Erasure beyond the member row -------------------------------------------------------------
#
# `member_erase` blanks the member row itself. Copies of the person's data also sit in logs and
# records that only point at the member loosely: the audit trail (old values in `changes`, the
# member's own login as actor with its e-mail and IP address), stored API responses, webhook
# payloads, import reports, staff-typed reasons. Those are found here and rewritten: every old
# value (e-mail, names, phone, street, birth date, IP addresses, card and customer numbers) is
# replaced by what it became on the member row ("" or the new random number), so the records stay
# readable and consistent with the anonymised member. tests/members/test_privacy_erasure.py dumps every
# text column of the database after an erasure and finds none of the values.

MIN_SCRUB_LENGTH = 3  # shorter values ("Li") would rewrite unrelated text; the member row has them blanked


@dataclass
class PersonalValues:
    """What the erased people were called, reached at and identified by, and what each value
    becomes. Collected before the member rows are blanked."""

    replacements: dict[str, str] = field(default_factory=dict)  # lower-cased old value -> new value
    search_terms: list[str] = field(default_factory=list)  # distinctive values to find loose copies by
    ip_addresses: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    new_numbers: dict[int, tuple[str, str]] = field(default_factory=dict)  # member id -> (card, customer)

    @classmethod
    def of(cls, people: list[Member]) -> PersonalValues:
        from .models import ConsentRecord, generate_card_number, generate_customer_number

        values = cls()
        for person in people:
            card, customer = generate_card_number(), generate_customer_number()
            values.new_numbers[person.pk] = (card, customer)
            values._add(person.card_number, card, search=True)
            values._add(person.customer_number, customer, search=True)
            values._add(person.email, "", search=True)
            values._add(f"{person.first_name} {person.last_name}".strip(), "", search=bool(person.first_name))
            for text in (person.first_name, person.last_name, person.phone, person.street):
                values._add(text, "")
            if person.birth_date:
                values._add(person.birth_date.isoformat(), "")
                values._add(person.birth_date.strftime("%d.%m.%Y"), "")
            if person.email:
                values.emails.add(person.email.lower())
            if person.user is not None:  # the login may spell the person differently
                login = person.user
                values._add(login.email, "", search=True)
                values._add(f"{login.first_name} {login.last_name}".strip(), "")
                for text in (login.first_name, login.last_name):
                    values._add(text, "")
                if login.email:
                    values.emails.add(login.email.lower())
        ips = ConsentRecord.objects.filter(member__in=people).exclude(ip_address=None).values_list("ip_address",
                                                                                                    flat=True)
        for ip in ips:
            values.ip_addresses.add(ip)
            values._add(ip, "")
        return values

    def _add(self, old: str, new: str, *, search: bool = False) -> None:
        old = (old or "").strip()
        if len(old) < MIN_SCRUB_LENGTH:
            return
        self.replacements[old.lower()] = new
        if search:
            self.search_terms.append(old)

    @cached_property
    def _pattern(self) -> re.Pattern | None:
        if not self.replacements:
            return None
        # Longest first, one pass: "Erika Muster" goes as a whole, and a new card number put in
        # is never searched again.
        alternatives = sorted(self.replacements, key=len, reverse=True)
        return re.compile("|".join(re.escape(value) for value in alternatives), re.IGNORECASE)

    def scrub(self, value):
        """`value` (text, or JSON-like data) with every old value replaced."""
        if isinstance(value, str):
            if self._pattern is None:
                return value
            # `.get`: a few letters change length when lower-cased; such a match is blanked.
            return self._pattern.sub(lambda match: self.replacements.get(match.group(0).lower(), ""), value)
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        return value

    def mentioned_in(self, field_name: str, *, cast: bool = False) -> Q:
        """Rows whose `field_name` (cast to text for JSON) contains one of the search terms."""
        lookup = f"{field_name}_text__icontains" if cast else f"{field_name}__icontains"
        condition = Q(pk__in=[])
        for term in self.search_terms:
            condition |= Q(**{lookup: term})
        return condition


def _with_text(queryset, *field_names: str):
    from django.db.models import TextField
    from django.db.models.functions import Cast

    return queryset.annotate(**{f"{name}_text": Cast(name, TextField()) for name in field_names})


def scrub_rows(queryset, values: PersonalValues, field_names: list[str]) -> int:
    """Rewrite `field_names` of every row in `queryset` whose values change; returns how many."""
    changed = 0
    for row in queryset.only("pk", *field_names).iterator():
        updates = {}
        for name in field_names:
            old = getattr(row, name)
            new = values.scrub(old)
            if new != old:
                updates[name] = new
        if updates:
            changed += type(row).objects.filter(pk=row.pk).update(**updates)
    return changed


# Other apps' rows that may hold a copy of the person's data (a message's address, a referral's
# reject reason, a ledger reason typed by staff): each app registers a scrubber in its
# AppConfig.ready(); members imports no other domain app.
Scrubber = Callable[[list[int], "PersonalValues"], None]
_scrubbers: list[Scrubber] = []


def personal_data_scrubber(scrubber: Scrubber) -> Scrubber:
    """Decorator: `scrubber(member_ids, values)` runs in every erasure, in its transaction."""
    if scrubber not in _scrubbers:
        _scrubbers.append(scrubber)
    return scrubber


def erase_personal_data_elsewhere(member_ids: list[int], values: PersonalValues, *, user_id: int | None) -> None:
    """What `member_erase` does beyond the member row: called inside its transaction, after the
    member rows are blanked."""
    from .models import ConsentRecord, MemberMerge, TierHistory

    ConsentRecord.objects.filter(member_id__in=member_ids).exclude(ip_address=None).update(ip_address=None)
    scrub_rows(TierHistory.objects.filter(member_id__in=member_ids).exclude(reason=""), values, ["reason"])
    scrub_rows(MemberMerge.objects.filter(Q(survivor_id__in=member_ids) | Q(duplicate_id__in=member_ids))
               .exclude(reason=""), values, ["reason"])
    for scrubber in _scrubbers:  # campaigns' messages, referrals, the ledger's texts (rewards.privacy)
        scrubber(member_ids, values)
    _erase_audit_trails(member_ids, values, user_id=user_id)
    if values.search_terms:
        _scrub_loose_copies(values)


def _erase_audit_trails(member_ids: list[int], values: PersonalValues, *, user_id: int | None) -> None:
    """django-auditlog: entries about the members and their consent records go (they hold the
    old values and IP addresses); entries the member's own login made stay as a record of what
    happened, without the login, its e-mail and IP address. Django's admin log names objects by
    their text, which named the person: it is rewritten."""
    from auditlog.models import LogEntry
    from django.contrib.admin.models import LogEntry as AdminLogEntry
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    from .models import ConsentRecord

    member_type = ContentType.objects.get_for_model(Member)
    consent_type = ContentType.objects.get_for_model(ConsentRecord)
    consent_ids = [str(pk) for pk in ConsentRecord.objects.filter(member_id__in=member_ids).values_list("pk",
                                                                                                        flat=True)]
    member_keys = [str(pk) for pk in member_ids]
    LogEntry.objects.filter(Q(content_type=member_type, object_pk__in=member_keys)
                            | Q(content_type=consent_type, object_pk__in=consent_ids)).delete()
    actor = Q(pk__in=[])
    for email in values.emails:
        actor |= Q(actor_email__iexact=email)
    if user_id is not None:
        actor |= Q(actor_id=user_id)
    own = LogEntry.objects.filter(actor)
    scrub_rows(own, values, ["object_repr", "changes_text", "changes", "additional_data", "serialized_data"])
    own.update(actor=None, actor_email="", remote_addr=None, remote_port=None)
    LogEntry.objects.filter(remote_addr__in=values.ip_addresses).update(remote_addr=None)

    user_type = ContentType.objects.get_for_model(get_user_model())
    about = Q(content_type=member_type, object_id__in=member_keys)
    if user_id is not None:
        about |= Q(content_type=user_type, object_id=str(user_id))
    admin_entries = AdminLogEntry.objects.filter(about)
    scrub_rows(admin_entries, values, ["object_repr", "change_message"])


# Where loose copies of a member's data arise: the API answers with a member (MemberSerializer)
# only under /members/, and the only webhook event that carries one is member.enrolled (the
# others name the member by id). Narrowing the search to them keeps an erasure fast next to a
# million deliveries (measured: 0.35-0.54 s per erasure with 1,000,000 deliveries and 300,000
# idempotency records, 6-10 s when every payload was read as text). A new endpoint or event that
# returns member data belongs in these lists; the database dump test (tests/members/test_privacy_erasure.py)
# enrols, updates, buys and redeems through the API with every event subscribed, and fails if a
# copy is left.
MEMBER_DATA_API_PATHS = ("/api/v1/members/",)
MEMBER_DATA_WEBHOOK_EVENTS = ("member.enrolled",)


def _scrub_loose_copies(values: PersonalValues) -> None:
    """Records that name people without pointing at a member row: stored API responses, webhook
    payloads, import reports, export selections. They are kept only for days or weeks (see the
    retention settings) and searched by the member's distinctive values (e-mail, card and
    customer numbers, full name)."""
    from partners.models import IdempotencyRecord, WebhookDelivery
    from transfers.models import ExportLog, ImportJob
    from transfers.problems import import_problem_files_scrub

    path = Q(pk__in=[])
    for prefix in MEMBER_DATA_API_PATHS:
        path |= Q(path__startswith=prefix)
    records = IdempotencyRecord.objects.filter(path).filter(values.mentioned_in("response_body"))
    for record in records.only("pk", "response_body").iterator():
        IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=_scrub_json_text(record.response_body,
                                                                                             values))
    deliveries = _with_text(WebhookDelivery.objects.filter(event__in=MEMBER_DATA_WEBHOOK_EVENTS), "payload")
    scrub_rows(deliveries.filter(values.mentioned_in("payload", cast=True)), values, ["payload", "last_error"])
    jobs = _with_text(ImportJob.objects, "errors", "warnings", "dry_run", "options")
    found = (values.mentioned_in("errors", cast=True) | values.mentioned_in("warnings", cast=True)
             | values.mentioned_in("dry_run", cast=True) | values.mentioned_in("options", cast=True)
             | values.mentioned_in("message"))
    scrub_rows(jobs.filter(found), values, ["errors", "warnings", "dry_run", "options", "message"])
    import_problem_files_scrub(values.scrub)  # the downloadable lists of every problem of a run
    scrub_rows(ExportLog.objects.filter(values.mentioned_in("filters")), values, ["filters"])


def _scrub_json_text(body: str, values: PersonalValues) -> str:
    """A stored response, rewritten and rendered compactly as DRF renders it (a replay stays JSON)."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return values.scrub(body)
    return json.dumps(values.scrub(data), ensure_ascii=False, separators=(",", ":"))


# --- Retention ---------------------------------------------------------------------------------

@dataclass
class RetentionReport:
    warned: int = 0
    warnings_cancelled: int = 0
    erased: int = 0
    webhook_deliveries_deleted: int = 0
    audit_ips_removed: int = 0
    import_reports_cleared: int = 0
    sessions_deleted: int = 0


def _inactive_since(cutoff: datetime) -> Q:
    return (Q(last_purchase_at__lt=cutoff) | Q(last_purchase_at=None)) & Q(joined_at__lt=cutoff) & (
        Q(user=None) | Q(user__last_login__lt=cutoff) | Q(user__last_login=None))


def retention_run(*, now: datetime | None = None, batch_size: int = 500) -> RetentionReport:
    now = now or timezone.now()
    report = RetentionReport()
    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_INACTIVE_DAYS)
    inactive = Member.objects.active().filter(_inactive_since(cutoff))
    report.warnings_cancelled = (Member.objects.exclude(retention_warned_at=None)
                                 .exclude(pk__in=inactive.values("pk")).update(retention_warned_at=None))
    report.warned = _warn(inactive.filter(retention_warned_at=None), now, batch_size)
    due = inactive.filter(retention_warned_at__lte=now - timedelta(days=settings.LOYALTY_RETENTION_WARNING_DAYS))
    report.erased = _erase(due, batch_size)
    report.webhook_deliveries_deleted = _purge_webhook_deliveries(now)
    report.audit_ips_removed = _remove_audit_ips(now)
    report.import_reports_cleared = _clear_import_reports(now)
    report.sessions_deleted = _delete_expired_sessions(now)
    logger.info("Retention: %s", asdict(report))
    return report


def _warn(members, now: datetime, batch_size: int) -> int:
    warned = 0
    erase_on = now + timedelta(days=settings.LOYALTY_RETENTION_WARNING_DAYS)
    for member in members.order_by("pk")[:batch_size * 20].iterator(chunk_size=batch_size):
        if member.email:
            with translation.override(member.language or settings.LANGUAGE_CODE):
                send_mail(_("Your Treuepunkt account will be deleted"),
                          render_to_string("emails/retention_warning.txt", {"member": member, "erase_on": erase_on}),
                          None, [member.email])
        # Marked one by one: a crash mid-way leaves no member warned without a record of it.
        warned += Member.objects.filter(pk=member.pk, retention_warned_at=None).update(retention_warned_at=now)
    return warned


def _erase(members, batch_size: int) -> int:
    from .erasure import member_erase
    from .models import PrivacyRequest

    erased = 0
    for member_id in list(members.order_by("pk").values_list("pk", flat=True)[:batch_size * 20]):
        # Its own transaction: locks one member for a moment.
        member_erase(member_id=member_id, channel=PrivacyRequest.Channel.RETENTION)
        erased += 1
    return erased


def _purge_webhook_deliveries(now: datetime) -> int:
    from partners.models import WebhookDelivery

    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_DELIVERY_DAYS)
    return WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status="pending").delete()[0]


def _remove_audit_ips(now: datetime) -> int:
    from auditlog.models import LogEntry

    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_IP_DAYS)
    return LogEntry.objects.filter(timestamp__lt=cutoff).exclude(remote_addr=None).update(remote_addr=None)


def _clear_import_reports(now: datetime) -> int:
    from transfers.models import ImportJob
    from transfers.problems import import_problem_files_delete

    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_IMPORT_DAYS)
    old = ImportJob.objects.filter(created_at__lt=cutoff).exclude(errors=[], warnings=[], dry_run={}, file="")
    cleared = 0
    for job in old.iterator():
        if job.file:
            job.file.delete(save=False)
        import_problem_files_delete(job)
        cleared += ImportJob.objects.filter(pk=job.pk).update(errors=[], warnings=[], dry_run={}, file="")
    return cleared


def _delete_expired_sessions(now: datetime) -> int:
    from django.contrib.sessions.models import Session

    return Session.objects.filter(expire_date__lt=now).delete()[0]
