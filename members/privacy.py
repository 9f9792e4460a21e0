"""Personal data: where it lives, what erasure does to it, and how long it is kept (DSGVO).

`PERSONAL_DATA` names every model of the project (and the third-party ones holding people's
data) with what happens to it; tests/test_privacy.py fails when a model is added without an
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
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

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
    "members.Tier": "no personal data",
    "members.Tag": "no personal data (the member's tags are removed)",
    "members.TierHistory": NONE,
    "members.MemberMerge": NONE,
    "members.PartnerRelation": NONE + "; which partners (and stores) the member enrolled or bought with: the "
                               "partner API's reach (an erased member is never reached)",
    "members.MemberCode": "only the hash of a code that expires within minutes (LOYALTY_MEMBER_CODE_MINUTES); "
                          "replaced by the member's next code",
    "members.ImportJob": "report rows cleared and file deleted after LOYALTY_RETENTION_IMPORT_DAYS",
    "members.ExportLog": "no personal data (who exported what, how many rows)",
    # rewards
    "rewards.Partner": "no personal data", "rewards.Store": "no personal data",
    "rewards.StoreDayTotal": "no personal data",
    "rewards.Purchase": NONE + "; kept for the accounts", "rewards.PurchaseLine": NONE,
    "rewards.PurchaseReturn": NONE, "rewards.PurchasePoints": NONE,
    "rewards.PointEntry": NONE + "; the ledger stays consistent (remaining points forfeited by one entry)",
    "rewards.EarningRule": "no personal data", "rewards.Reward": "no personal data",
    "rewards.Redemption": NONE, "rewards.StampCardProgram": "no personal data", "rewards.StampCard": NONE,
    "rewards.StampCredit": NONE, "rewards.CashbackProgram": "no personal data",
    # referrals
    "referrals.ReferralProgram": "no personal data", "referrals.ReferralCode": NONE,
    "referrals.ReferralClaim": "deleted with the login", "referrals.Referral": NONE,
    # campaigns
    "campaigns.Segment": "no personal data", "campaigns.SegmentCondition": "no personal data",
    "campaigns.Campaign": "no personal data", "campaigns.Variant": "no personal data",
    "campaigns.Message": "the address it was sent to is removed on erasure", "campaigns.RaffleEntry": NONE,
    # feedback
    "feedback.Survey": "no personal data", "feedback.SurveyInvitation": NONE,
    "feedback.Response": "comment blanked on erasure; the score stays for the statistics",
    "feedback.FollowUp": "notes blanked on erasure", "feedback.Complaint": "subject and description blanked",
    "feedback.ComplaintMessage": "texts blanked on erasure",
    # platform
    "loyalty_site.PartnerAPIKey": "no personal data", "loyalty_site.PartnerRedemption": NONE,
    "loyalty_site.IdempotencyRecord": "responses may name members: purged after LOYALTY_API_IDEMPOTENCY_HOURS",
    "loyalty_site.WebhookSubscription": "no personal data",
    "loyalty_site.WebhookDelivery": "payloads may name members: deleted after LOYALTY_RETENTION_DELIVERY_DAYS",
    # third-party apps holding people's data
    "auth.User": "a member's login is deleted on erasure (staff logins are not members)",
    "account.EmailAddress": "deleted with the login", "account.EmailConfirmation": "deleted with the login",
    "mfa.Authenticator": "deleted with the login",
    "sessions.Session": "ended on erasure; expired ones deleted by the retention job",
    "auditlog.LogEntry": "entries about the member deleted on erasure; IP addresses removed after "
                         "LOYALTY_RETENTION_IP_DAYS",
}


def erase_personal_data_elsewhere(member_ids: list[int]) -> None:
    """What `member_erase` does beyond the member row: called inside its transaction."""
    from campaigns.models import Message

    from .models import ConsentRecord

    ConsentRecord.objects.filter(member_id__in=member_ids).exclude(ip_address=None).update(ip_address=None)
    Message.objects.filter(member_id__in=member_ids).exclude(to_address="").update(to_address="")


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
    from .services import member_erase

    erased = 0
    for member_id in list(members.order_by("pk").values_list("pk", flat=True)[:batch_size * 20]):
        member_erase(member_id=member_id)  # its own transaction: locks one member for a moment
        erased += 1
    return erased


def _purge_webhook_deliveries(now: datetime) -> int:
    from loyalty_site.models import WebhookDelivery

    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_DELIVERY_DAYS)
    return WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status="pending").delete()[0]


def _remove_audit_ips(now: datetime) -> int:
    from auditlog.models import LogEntry

    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_IP_DAYS)
    return LogEntry.objects.filter(timestamp__lt=cutoff).exclude(remote_addr=None).update(remote_addr=None)


def _clear_import_reports(now: datetime) -> int:
    from .models import ImportJob

    cutoff = now - timedelta(days=settings.LOYALTY_RETENTION_IMPORT_DAYS)
    old = ImportJob.objects.filter(created_at__lt=cutoff).exclude(errors=[], warnings=[], dry_run={}, file="")
    cleared = 0
    for job in old.iterator():
        if job.file:
            job.file.delete(save=False)
        cleared += ImportJob.objects.filter(pk=job.pk).update(errors=[], warnings=[], dry_run={}, file="")
    return cleared


def _delete_expired_sessions(now: datetime) -> int:
    from django.contrib.sessions.models import Session

    return Session.objects.filter(expire_date__lt=now).delete()[0]
