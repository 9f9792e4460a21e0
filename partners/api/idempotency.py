"""Idempotency-Key: a partner can retry any write without doing it twice.

How a write runs (`@idempotent` on the view method):

1. No usable `Idempotency-Key` header: 400, nothing happens.
2. One transaction holds everything. It first takes a PostgreSQL advisory lock on
   (partner, key) with `pg_try_advisory_xact_lock`: if a request with the same key is still
   running, the lock is taken and this one answers 409 at once (it never waits, never runs twice).
3. Under the lock it looks for the stored record of the key. Found with the same request
   fingerprint (method, path and the SHA-256 of the canonical JSON body): the first response
   again, byte for byte, with `Idempotent-Replayed: true`. Found with another fingerprint: 422.
4. Otherwise the view does the work, and a successful response (2xx) is stored in the SAME
   transaction. So a response lost after the commit is still there for the retry, and a crash
   before the commit leaves neither the work nor the record. An error response is not stored
   (the transaction rolls back), so a corrected retry runs.

The lock is released by the commit or rollback itself: a killed process leaves no stale
"in progress" state behind. Records are kept for at least 24 hours (LOYALTY_API_IDEMPOTENCY_HOURS)
and then purged by a beat job; a purchase's order reference stays unique after that anyway.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer

from partners.models import IdempotencyRecord

from .exceptions import IdempotencyKeyMissing, IdempotencyKeyReused, RequestInProgress

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII without spaces

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER, type=OpenApiTypes.STR, location=OpenApiParameter.HEADER, required=True,
    pattern=r"^[\x21-\x7e]{1,255}$",
    description="A unique key per intended change (a UUID is a good choice). Retrying with the same key and "
                "body returns the first response; the same key with another body is refused (422); while the "
                "first request is still running, a retry gets 409.",
)


def request_fingerprint(request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _lock_id(partner_id: int, key: str) -> int:
    digest = hashlib.blake2b(f"{partner_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _advisory_lock(lock_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        if not cursor.fetchone()[0]:
            raise RequestInProgress()


def idempotent(view_method):
    """Decorate a viewset method that changes data (see the module docstring)."""

    @functools.wraps(view_method)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "")
        if not _KEY_PATTERN.fullmatch(key):
            raise IdempotencyKeyMissing()
        partner = request.user.partner
        fingerprint = request_fingerprint(request)
        lock_id = _lock_id(partner.pk, key)
        with transaction.atomic():
            _advisory_lock(lock_id)
            return _run_once(view_method, view, request, args, kwargs, partner, key, fingerprint)

    return wrapper


def _run_once(view_method, view, request, args, kwargs, partner, key, fingerprint):
    stored = _stored_response(partner.pk, key)
    if stored is not None:
        stored_fingerprint, status, body = stored
        if stored_fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        return HttpResponse(body, status=status, content_type="application/json", headers={REPLAY_HEADER: "true"})
    response = view_method(view, request, *args, **kwargs)
    if not 200 <= response.status_code < 300:
        transaction.set_rollback(True)
        return response
    body = JSONRenderer().render(response.data).decode()
    _store_response(partner_id=partner.pk, key=key, fingerprint=fingerprint, method=request.method,
                    path=request.path[:255], status=response.status_code, body=body)
    # The stored bytes are the answer, rendered once: a replay is the same bytes by construction.
    live = HttpResponse(body, status=response.status_code, content_type="application/json")
    for header, value in response.items():
        if header.lower() != "content-type":  # DRF's is set when it renders; this one is JSON
            live[header] = value
    return live


# Every write through the API reads and writes a record: plain SQL, as the ORM took longer to build
# these two statements than PostgreSQL takes to run them.
_TABLE = IdempotencyRecord._meta.db_table


def _stored_response(partner_id: int, key: str) -> tuple[str, int, str] | None:
    """(fingerprint, status, body) of the record of (partner, key), if there is one."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint, response_status, response_body FROM {_TABLE} "  # noqa: S608 - a table name
                       "WHERE partner_id = %s AND key = %s", [partner_id, key])
        return cursor.fetchone()


def _store_response(*, partner_id: int, key: str, fingerprint: str, method: str, path: str, status: int,
                    body: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_TABLE} (partner_id, key, fingerprint, method, path, response_status, "  # noqa: S608
                       "response_body, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                       [partner_id, key, fingerprint, method, path, status, body, timezone.now()])


# --- Retention -------------------------------------------------------------------------------

def idempotency_records_purge(*, now=None, batch_size: int = 10_000) -> int:
    """Delete records older than the retention (never less than 24 hours), in short batches."""
    hours = max(24, settings.LOYALTY_API_IDEMPOTENCY_HOURS)
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    deleted = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]


@shared_task(name="loyalty_site.api.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return idempotency_records_purge()
