"""The audit trail of staff changes (django-auditlog): who changed what, when, from where.

Registered here in one place. Balances are not audited field by field: every point movement
is already a ledger entry with its cause. Personal data in the trail goes with the member when
they are erased (`core.audit.erase_audit_trail_of`).
"""

from __future__ import annotations

from auditlog.cid import set_cid
from auditlog.context import auditlog_value
from auditlog.middleware import AuditlogMiddleware
from auditlog.registry import auditlog

UNAUDITED_MEMBER_FIELDS = ["points_balance", "points_pending", "last_purchase_at", "purchases_12m", "spend_12m",
                           "lifetime_spend", "updated_at", "created_at"]


def register_audited_models() -> None:
    from members.models import ConsentRecord, Member, Tier
    from partners.models import Partner, Store
    from rewards.models import CashbackProgram, EarningRule, ProgrammeSettings, Reward, StampCardProgram

    auditlog.register(Member, exclude_fields=UNAUDITED_MEMBER_FIELDS, m2m_fields={"tags"})
    for model in (ConsentRecord, Tier, EarningRule, Reward, StampCardProgram, CashbackProgram, ProgrammeSettings,
                  Partner, Store):
        auditlog.register(model)



# --- Who and from where, for every request ------------------------------------------------------
#
# django-auditlog's own middleware connects a pre_save receiver at the start of every request and
# disconnects it at the end. Each connect and disconnect also empties the receiver cache of
# pre_save, so every model signal of the request looks its receivers up again: about a tenth of
# a balance read's Python time. Here one receiver is connected once, when the app is ready, and a
# request only sets (and afterwards resets) auditlog's context variable, naming that receiver.
# Same entries: actor, remote address and port, correlation id (tests/loyalty_site/test_audit_context.py).

_REQUEST_CONTEXT = ("loyalty_site.audit", "request")


def connect_request_context_receiver() -> None:
    from functools import partial

    from auditlog import get_logentry_model
    from auditlog.context import _set_extra_data
    from django.db.models.signals import pre_save

    pre_save.connect(partial(_set_extra_data, signal_duid=_REQUEST_CONTEXT), sender=get_logentry_model(),
                     dispatch_uid=_REQUEST_CONTEXT, weak=False)


class AuditContextMiddleware(AuditlogMiddleware):
    """auditlog's middleware (what it records is unchanged) without a signal connection per request."""

    def __call__(self, request):
        set_cid(request)
        context = self.get_extra_data(request)
        context["signal_duid"] = _REQUEST_CONTEXT
        token = auditlog_value.set(context)
        try:
            return self.get_response(request)
        finally:
            auditlog_value.reset(token)
