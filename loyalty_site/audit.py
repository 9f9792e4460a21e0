"""The audit trail of staff changes (django-auditlog): who changed what, when, from where.

Registered here in one place. Balances are not audited field by field: every point movement
is already a ledger entry with its cause. Personal data in the trail goes with the member when
they are erased (`core.audit.erase_audit_trail_of`).
"""

from __future__ import annotations

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

