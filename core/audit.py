"""Reading and erasing the audit trail of one record (django-auditlog). Which models are audited
is decided in one place, loyalty_site/audit.py."""

from __future__ import annotations

from auditlog.models import LogEntry


def audit_trail_of(obj, *, limit: int = 20) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).select_related("actor").order_by("-timestamp")[:limit])


def erase_audit_trail_of(obj) -> int:
    """Remove the entries about `obj` (DSGVO Art. 17): they hold its old personal data."""
    deleted, _ = LogEntry.objects.get_for_object(obj).delete()
    return deleted
