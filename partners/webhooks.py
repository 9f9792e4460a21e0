"""Webhooks: an outbox of signed deliveries, sent by Celery after the commit. (The subscription
endpoints are in partners/api/webhooks.py.)

- `webhooks_record(announcements)` writes one `WebhookDelivery` per matching active subscription
  of the named partners, for a whole batch of events with one INSERT, in the caller's transaction
  (the change and its announcement commit together or not at all), and queues the delivery task
  after the commit. members.announcements calls it for the domain events (core.events), which is
  how every change is announced, whatever path made it.
- Each attempt POSTs a JSON body signed with the subscription's secret:
  `X-Treuepunkt-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
  Receivers recompute the HMAC over the timestamp, a dot and the raw body, compare in constant
  time, and refuse old timestamps (replays). `X-Treuepunkt-Event-Id` is the same for every
  attempt, so a receiver can ignore repeats.
- A non-2xx answer, a timeout or a refused connection is retried with exponential backoff
  (LOYALTY_WEBHOOK_BACKOFF_SECONDS × 2^(attempt-1), capped at an hour); after
  LOYALTY_WEBHOOK_MAX_ATTEMPTS attempts the delivery is marked failed. Redirects are not
  followed. The history of every delivery is in the admin.
- Every attempt checks the URL again and connects only to the address it checked
  (core.outbound: public addresses only, no second DNS lookup). A failed attempt
  records a short, fixed reason that partners see translated; the low-level detail (which
  could tell a partner about our network) goes to the server log only.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from core.outbound import URLRefused, target_check, target_post
from core.shared_version import SharedVersion
from core.tasks import enqueue

from .models import WebhookDelivery, WebhookSubscription

SIGNATURE_HEADER = "X-Treuepunkt-Signature"
USER_AGENT = "Treuepunkt-Webhooks/1.0"
TIMEOUT_SECONDS = 10

logger = logging.getLogger("loyalty_site.webhooks")


# --- Emitting ----------------------------------------------------------------------------------

def webhook_subscribers() -> dict[str, set[int]]:
    """Event name → ids of the partners with an active subscription to it. From the per-process
    copy: asking costs no query, so a change nobody subscribed to is announced for free."""
    subscribers: dict[str, set[int]] = {}
    for _pk, partner_id, events in _active_subscriptions():
        for event in events:
            subscribers.setdefault(event, set()).add(partner_id)
    return subscribers


def webhooks_record(announcements: Iterable[tuple[str, dict, Collection[int]]]) -> list[WebhookDelivery]:
    """(event, payload, partner ids) each: a delivery for every active subscription of those
    partners to the event, all with one INSERT, each sent after the commit. Call it inside the
    transaction of the changes (members.announcements does, for every domain event)."""
    by_partner: dict[int, list[tuple[int, list[str]]]] = {}
    for pk, partner_id, events in _active_subscriptions():
        by_partner.setdefault(partner_id, []).append((pk, events))
    rows = []
    for event, payload, partner_ids in announcements:
        targets = [pk for partner_id in partner_ids for pk, events in by_partner.get(partner_id, ())
                   if event in events]
        if targets:
            data = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
            rows.extend(WebhookDelivery(subscription_id=pk, event=event, payload=data) for pk in targets)
    if not rows:
        return []
    deliveries = WebhookDelivery.objects.bulk_create(rows)
    for delivery in deliveries:
        enqueue(webhook_deliver, delivery.pk)
    return deliveries


SUBSCRIPTIONS_VERSION = SharedVersion("loyalty:webhook-subscriptions-version")
_known_subscriptions: dict = {"version": None, "rows": []}


def _active_subscriptions() -> list[tuple[int, int, list[str]]]:
    """(id, partner id, events) of every active subscription, kept per process: every purchase
    asks, and subscriptions change a few times a year."""
    version = SUBSCRIPTIONS_VERSION.current()
    if _known_subscriptions["version"] != version:
        rows = list(WebhookSubscription.objects.filter(active=True).values_list("pk", "partner_id", "events"))
        _known_subscriptions.update(version=version, rows=rows)
    return _known_subscriptions["rows"]


def subscriptions_changed() -> None:
    """Call after changing subscriptions with a queryset update (which sends no signal)."""
    SUBSCRIPTIONS_VERSION.bump_now_and_on_commit()


@receiver([post_save, post_delete], sender=WebhookSubscription)
def _subscription_changed(**kwargs) -> None:
    subscriptions_changed()


# --- Signing -----------------------------------------------------------------------------------

def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_signature_verify(secret: str, header: str, body: bytes, *, tolerance: int = 300,
                             now: float | None = None) -> bool:
    """What a receiver does (and what the tests do): check the HMAC and the timestamp's age."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = webhook_signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def delivery_body(delivery: WebhookDelivery) -> bytes:
    envelope = {"id": str(delivery.event_id), "event": delivery.event,
                "created_at": delivery.created_at.isoformat(), "data": delivery.payload}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


# --- Delivering --------------------------------------------------------------------------------

# Why an attempt failed, as stored in `last_error`: fixed texts (English, the msgids), shown
# translated by delivery_error_text(). Besides these, `last_error` holds "HTTP <status> <reason>".
ERROR_ADDRESS_REFUSED = gettext_noop("The URL's host is not allowed: it must resolve to public addresses only.")
ERROR_UNRESOLVABLE = gettext_noop("The URL's host name could not be resolved.")
ERROR_TIMEOUT = gettext_noop("The connection timed out: the receiver did not answer in time.")
ERROR_TLS = gettext_noop("The secure connection (TLS) to the receiver failed: check its certificate.")
ERROR_CONNECTION = gettext_noop("The connection to the receiver failed.")
ERROR_DEACTIVATED = gettext_noop("The subscription was deactivated.")
ERRORS = {ERROR_ADDRESS_REFUSED, ERROR_UNRESOLVABLE, ERROR_TIMEOUT, ERROR_TLS, ERROR_CONNECTION, ERROR_DEACTIVATED}


def delivery_error_text(stored: str) -> str:
    """`last_error` for people: our fixed reasons in the active language, anything else as stored."""
    return gettext(stored) if stored in ERRORS else stored


def _failure_reason(error: BaseException) -> str:
    if isinstance(error, URLRefused):
        return ERROR_UNRESOLVABLE if error.unresolvable else ERROR_ADDRESS_REFUSED
    if isinstance(error, TimeoutError | socket.timeout):
        return ERROR_TIMEOUT
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return ERROR_TLS
    return ERROR_CONNECTION


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """One POST: the URL checked and resolved now, the connection made to the checked address."""
    try:
        target = target_check(url)
        status_code, reason = target_post(target, body, headers, timeout=TIMEOUT_SECONDS)
    except (URLRefused, OSError, http.client.HTTPException, ValueError) as error:
        # The detail (an address, a resolver or TLS message) stays in our log; the host only, as
        # a partner's URL may carry a token in its path or query.
        logger.warning("Webhook POST to %s failed: %s: %s", urlsplit(url).netloc, type(error).__name__, error)
        return None, _failure_reason(error)
    if 200 <= status_code < 300:
        return status_code, ""
    return status_code, f"HTTP {status_code} {reason}"[:200]


def webhook_attempt(*, delivery_id: int) -> WebhookDelivery:
    """One attempt: POST, then record the outcome (compare-and-set on PENDING, so a
    redelivered task never sends a delivered event again or counts an attempt twice)."""
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    if delivery.status != WebhookDelivery.Status.PENDING:
        return delivery
    subscription = delivery.subscription
    body = delivery_body(delivery)
    if subscription.active:
        status_code, error = _post(subscription.url, body, {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Treuepunkt-Event": delivery.event,
            "X-Treuepunkt-Event-Id": str(delivery.event_id),
            SIGNATURE_HEADER: webhook_signature(subscription.secret, int(time.time()), body),
        })
    else:
        status_code, error = None, ERROR_DEACTIVATED
    succeeded = status_code is not None and 200 <= status_code < 300
    attempts = delivery.attempts + 1
    if succeeded:
        new_status = WebhookDelivery.Status.DELIVERED
    elif attempts >= settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS or not subscription.active:
        new_status = WebhookDelivery.Status.FAILED
    else:
        new_status = WebhookDelivery.Status.PENDING
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
        attempts=F("attempts") + 1, status=new_status, last_status_code=status_code, last_error=error,
        last_attempt_at=now, delivered_at=now if succeeded else None,
    )
    delivery.refresh_from_db()
    return delivery


JITTER = 0.2  # retries of many events don't arrive together


def backoff_base(attempts: int) -> float:
    """The wait before the next attempt, before jitter: doubling, capped at an hour."""
    return min(3600, settings.LOYALTY_WEBHOOK_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))


def backoff_seconds(attempts: int) -> float:
    return backoff_base(attempts) * random.uniform(1 - JITTER, 1 + JITTER)


@shared_task(bind=True, name="loyalty_site.webhooks.deliver", max_retries=None, ignore_result=True)
def webhook_deliver(self, delivery_id: int) -> None:
    delivery = webhook_attempt(delivery_id=delivery_id)
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise self.retry(countdown=backoff_seconds(delivery.attempts))


def webhook_deliveries_resume(*, now=None, limit: int = 1000) -> int:
    """Beat's sweeper: a delivery whose task was lost (a worker killed while the task waited for
    its retry, or a broker that lost it) stays pending. Queue those that are overdue by more than
    a minute beyond their backoff again. Delivery is at least once: a receiver ignores an
    `X-Treuepunkt-Event-Id` it has seen."""
    from datetime import timedelta

    now = now or timezone.now()
    resumed = 0
    pending = (WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=now - timedelta(
        minutes=5)).order_by("pk").only("pk", "attempts", "last_attempt_at", "created_at")[:limit])
    for delivery in pending:
        last = delivery.last_attempt_at or delivery.created_at
        longest_wait = backoff_base(delivery.attempts) * (1 + JITTER)
        if delivery.attempts == 0 or now - last > timedelta(seconds=longest_wait + 60):
            enqueue(webhook_deliver, delivery.pk)
            resumed += 1
    return resumed


@shared_task(name="loyalty_site.webhooks.resume", ignore_result=True)
def resume_webhook_deliveries() -> int:
    return webhook_deliveries_resume()
