"""Web Push: the member's devices (PushSubscription), the consent that goes with them, and
delivering one notification to a device.

- A device subscribes in the portal (static/portal/pwa.js: Notification permission, then
  PushManager.subscribe with our VAPID public key); the browser hands us its push service's
  endpoint URL and two keys. `push_subscribe` stores them and records the PUSH consent
  (granted, source portal) in the same transaction; `push_unsubscribe` deletes the device and
  withdraws the consent when it was the member's last one (a member with a phone and a laptop
  who switches the laptop off still wants the phone's notifications).
- The endpoint is a URL a browser gave us, so whoever controls the browser chooses it: it is
  checked like a partner's webhook URL (core.outbound: https only, bounded length, a public
  host, resolved and refused when any address is internal), when it is stored and again before
  every delivery, and the POST goes to the checked address only (no second DNS lookup).
- Delivery (`push_deliver`): pywebpush encrypts the payload for the device (RFC 8291,
  aes128gcm), py-vapid signs the VAPID header (RFC 8292), core.outbound.target_post sends it. A
  push service answering 404 or 410 says the subscription is gone: the row is deleted.
- Without the VAPID settings push is not available: `push_configured()` is False, the portal
  says so, the campaign console refuses the channel.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core import outbound

from .errors import PushRefused
from .models import ConsentRecord, Member, PushSubscription
from .services import consent_current, consent_record

ENDPOINT_MAX_LENGTH = PushSubscription._meta.get_field("endpoint").max_length
PUSH_TIMEOUT_SECONDS = 10
MAX_DEVICES_PER_MEMBER = 10
GONE = (404, 410)  # RFC 8030 §7.3: the subscription expired or was unsubscribed


@dataclass(frozen=True)
class PushResult:
    status: int  # the push service's HTTP status, 0 when nothing was sent (refused, unreachable)
    gone: bool = False  # the subscription was deleted (404/410)
    error: str = ""

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


# --- Configuration ------------------------------------------------------------------------------

def push_configured() -> bool:
    return bool(settings.LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY and settings.LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY
                and settings.LOYALTY_WEBPUSH_VAPID_SUBJECT)


def push_not_configured_text() -> str:
    return _("Push notifications are not set up for this programme (the VAPID keys are missing "
             "from the settings).")


def vapid_keys_generate() -> dict[str, str]:
    """A new VAPID key pair in the form the settings take (for operators and the demo)."""
    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid

    vapid = Vapid()
    vapid.generate_keys()
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY": _b64(private), "LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY": _b64(public)}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64_length(text: str) -> int | None:
    """The number of bytes a base64url text decodes to (None: not base64url)."""
    if not text or len(text) > 200 or not all(c.isalnum() or c in "-_=" for c in text):
        return None
    try:
        return len(base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)))
    except (binascii.Error, ValueError):
        return None


# --- Subscribing --------------------------------------------------------------------------------

def endpoint_check(endpoint: str) -> outbound.Target:
    """The endpoint as core.outbound checks a webhook URL; PushRefused with the reason."""
    endpoint = (endpoint or "").strip()
    if not endpoint or len(endpoint) > ENDPOINT_MAX_LENGTH:
        raise PushRefused(_("The push service address is missing or too long."))
    try:
        return outbound.target_check(endpoint)
    except outbound.URLRefused as error:
        raise PushRefused(_("The push service address was refused: %(reason)s.") % {"reason": error}) from None


def _keys_check(p256dh: str, auth: str) -> None:
    # P-256 public key, uncompressed (65 bytes); the auth secret is 16 bytes (RFC 8291).
    if _b64_length(p256dh) != 65 or _b64_length(auth) != 16:
        raise PushRefused(_("The browser's push keys are not valid."))


def push_subscribe(*, member_id: int, endpoint: str, p256dh: str, auth: str, ip_address: str | None = None,
                   ) -> PushSubscription:
    """The member switched push notifications on for this device: store it, grant the consent.

    An endpoint belongs to one browser profile: if another member had it (a shared device, the
    other member signed out without switching off), it now belongs to whoever subscribed last.
    The endpoint is checked (a DNS look-up) before the transaction opens."""
    if not push_configured():
        raise PushRefused(push_not_configured_text())
    endpoint = endpoint.strip()
    endpoint_check(endpoint)
    _keys_check(p256dh, auth)
    return _subscription_store(member_id=member_id, endpoint=endpoint, p256dh=p256dh, auth=auth,
                               ip_address=ip_address)


@transaction.atomic
def _subscription_store(*, member_id: int, endpoint: str, p256dh: str, auth: str, ip_address: str | None,
                        ) -> PushSubscription:
    member = Member.objects.select_for_update(of=("self",)).get(pk=member_id)
    if member.status != Member.Status.ACTIVE:
        raise PushRefused(_("Push notifications are only available for active memberships."))
    subscription, _created = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={"member": member, "p256dh": p256dh, "auth": auth, "failures": 0, "created_at": timezone.now()},
    )
    # A member's devices are bounded: the oldest beyond the limit go (a browser long gone, most likely).
    keep = PushSubscription.objects.filter(member=member).order_by("-created_at", "-pk")[:MAX_DEVICES_PER_MEMBER]
    PushSubscription.objects.filter(member=member).exclude(pk__in=list(keep.values_list("pk", flat=True))).delete()
    latest = consent_current(member)[ConsentRecord.Purpose.PUSH]
    if latest is None or not latest.granted:
        consent_record(member=member, purpose=ConsentRecord.Purpose.PUSH, granted=True,
                       source=ConsentRecord.Source.PORTAL, ip_address=ip_address,
                       text_version=settings.LOYALTY_CONSENT_TEXT_VERSION)
    return subscription


@transaction.atomic
def push_unsubscribe(*, member_id: int, endpoint: str, ip_address: str | None = None) -> bool:
    """The member switched push notifications off on this device. Only the member's own device
    is deleted (someone else's endpoint changes nothing); the consent is withdrawn when no
    device is left. Returns whether a device was deleted."""
    member = Member.objects.select_for_update(of=("self",)).get(pk=member_id)
    deleted, _rows = PushSubscription.objects.filter(member=member, endpoint=(endpoint or "").strip()).delete()
    if not PushSubscription.objects.filter(member=member).exists():
        latest = consent_current(member)[ConsentRecord.Purpose.PUSH]
        if latest is not None and latest.granted:
            consent_record(member=member, purpose=ConsentRecord.Purpose.PUSH, granted=False,
                           source=ConsentRecord.Source.PORTAL, ip_address=ip_address,
                           text_version=settings.LOYALTY_CONSENT_TEXT_VERSION)
    return bool(deleted)


# --- Reading ------------------------------------------------------------------------------------

def push_device_counts(member_ids) -> dict[int, int]:
    """Devices per member, for a chunk of campaign messages (one query)."""
    from django.db.models import Count

    rows = (PushSubscription.objects.filter(member_id__in=list(member_ids)).order_by().values("member_id")
            .annotate(n=Count("pk")).values_list("member_id", "n"))
    return dict(rows)


# --- Delivering ---------------------------------------------------------------------------------

def push_payload(*, title: str, body: str, url: str = "", tag: str = "") -> bytes:
    """What the service worker's push handler reads (templates/portal/sw.js)."""
    return json.dumps({"title": title[:120], "body": body[:1000], "url": url, "tag": tag},
                      ensure_ascii=False).encode("utf-8")


def _vapid_headers(endpoint: str) -> dict[str, str]:
    from py_vapid import Vapid

    parts = urlsplit(endpoint)
    claims = {"sub": settings.LOYALTY_WEBPUSH_VAPID_SUBJECT, "aud": f"{parts.scheme}://{parts.netloc}",
              "exp": int(time.time()) + 12 * 60 * 60}
    return Vapid.from_string(private_key=settings.LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY).sign(claims)


def _encrypted(subscription: PushSubscription, payload: bytes) -> bytes:
    from pywebpush import WebPusher

    pusher = WebPusher({"endpoint": subscription.endpoint,
                        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}})
    return pusher.encode(payload, content_encoding="aes128gcm")["body"]


def push_post(target: outbound.Target, body: bytes, headers: dict[str, str]) -> int:
    """The one place that talks to a push service (tests point subscriptions at a local one)."""
    status, _reason = outbound.target_post(target, body, headers, timeout=PUSH_TIMEOUT_SECONDS)
    return status


def push_deliver(subscription: PushSubscription, payload: bytes, *, urgency: str = "normal") -> PushResult:
    """Send one notification to one device; records success, failures, and deletes a gone device.
    Outside any transaction (network I/O)."""
    if not push_configured():
        return PushResult(status=0, error=push_not_configured_text())
    try:
        target = endpoint_check(subscription.endpoint)  # again: a name's addresses change
    except PushRefused as error:
        _failed(subscription)
        return PushResult(status=0, error=str(error))
    headers = {**_vapid_headers(subscription.endpoint), "TTL": str(settings.LOYALTY_WEBPUSH_TTL_SECONDS),
               "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream", "Urgency": urgency}
    body = _encrypted(subscription, payload)
    headers["Content-Length"] = str(len(body))
    try:
        status = push_post(target, body, headers)
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, TLS, a broken answer
        _failed(subscription)
        return PushResult(status=0, error=f"{type(error).__name__}: {error}")
    if status in GONE:
        PushSubscription.objects.filter(pk=subscription.pk).delete()
        return PushResult(status=status, gone=True)
    if 200 <= status < 300:
        PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=timezone.now(), failures=0)
        return PushResult(status=status)
    _failed(subscription)
    return PushResult(status=status, error=f"push service answered {status}")


def _failed(subscription: PushSubscription) -> None:
    PushSubscription.objects.filter(pk=subscription.pk).update(failures=F("failures") + 1)


def push_send_to_member(member_id: int, payload: bytes) -> list[PushResult]:
    """One notification to each of the member's devices."""
    return [push_deliver(subscription, payload)
            for subscription in PushSubscription.objects.filter(member_id=member_id).order_by("pk")]
