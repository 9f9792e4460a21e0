"""Services of the partners app: partners, API keys, webhook subscriptions, delivery retries.

Like every service in the project: keyword-only, typed, one transaction each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from core.outbound import URLRefused, target_check
from core.tasks import enqueue

from .api.authentication import keys_changed
from .api.exceptions import InvalidWebhookURL
from .models import Partner, PartnerAPIKey, Scope, Store, WebhookDelivery, WebhookEvent, WebhookSubscription
from .webhooks import subscriptions_changed, webhook_deliver

# --- Partner API keys ------------------------------------------------------------------------------


def scopes_validate(scopes: Iterable[str]) -> list[str]:
    """The scopes, de-duplicated in a stable order; ValueError names the unknown ones."""
    cleaned = list(dict.fromkeys(scope.strip() for scope in scopes if scope.strip()))
    unknown = [scope for scope in cleaned if scope not in Scope.values]
    if unknown:
        raise ValueError(_("Unknown scopes: %(unknown)s. Known scopes: %(known)s.") % {
            "unknown": ", ".join(unknown), "known": ", ".join(Scope.values)})
    return cleaned


@transaction.atomic
def partner_get_or_create(*, name: str) -> tuple[Partner, bool]:
    return Partner.objects.get_or_create(name=name.strip())


@transaction.atomic
def partner_key_create(*, partner: Partner, scopes: Sequence[str], name: str,
                       stores: Sequence[Store] = (), expiry_date: datetime | None = None) -> tuple[PartnerAPIKey, str]:
    """A new key for `partner`. Returns the key row and the key itself: the only time it is
    visible (only its SHA-512 hash is stored)."""
    if any(store.partner_id != partner.pk for store in stores):
        raise ValueError(_("A key can only be restricted to its partner's own stores."))
    key, raw = PartnerAPIKey.objects.create_key(partner=partner, scopes=scopes_validate(scopes), name=name[:50],
                                                expiry_date=expiry_date)
    if stores:
        key.stores.set(stores)
    return key, raw


@dataclass(frozen=True)
class IssuedKey:
    key: PartnerAPIKey
    raw: str  # shown once
    partner_created: bool


@transaction.atomic
def partner_key_issue(*, partner_name: str, scopes: Sequence[str], store_codes: Sequence[str] = (),
                      name: str = "") -> IssuedKey:
    """A key for the partner of this name, created if needed (set-up scripts). Everything is
    checked before anything is written, and it all happens in one transaction: an unknown scope
    or store code creates neither the partner nor the key (ValueError says what was wrong)."""
    partner_name = partner_name.strip()
    if not partner_name:
        raise ValueError(_("The partner's name must not be empty."))
    scopes = scopes_validate(scopes)
    if not scopes:
        raise ValueError(_("Name at least one scope. Known scopes: %(known)s.") % {"known": ", ".join(Scope.values)})
    partner, created = Partner.objects.get_or_create(name=partner_name)
    codes = list(dict.fromkeys(code.strip() for code in store_codes if code.strip()))
    stores = list(Store.objects.filter(partner=partner, code__in=codes))
    missing = sorted(set(codes) - {store.code for store in stores})
    if missing:
        raise ValueError(_("Unknown store codes for %(partner)s: %(codes)s.") % {
            "partner": partner_name, "codes": ", ".join(missing)})
    key, raw = partner_key_create(partner=partner, scopes=scopes, stores=stores, name=name or "create_partner_key")
    return IssuedKey(key=key, raw=raw, partner_created=created)


DEMO_KEY_NAME = "seed_demo"


@transaction.atomic
def demo_partner_key(partner: Partner) -> str:
    """A fresh all-scopes key for the demo partner, printed by seed_demo. Keys are stored only
    hashed, so a re-run cannot show the old one again: it revokes it and makes a new one."""
    PartnerAPIKey.objects.filter(partner=partner, name=DEMO_KEY_NAME, revoked=False).update(revoked=True)
    keys_changed()
    return partner_key_create(partner=partner, scopes=Scope.values, name=DEMO_KEY_NAME)[1]


@transaction.atomic
def partner_key_revoke(*, key_id: str) -> int:
    """Revoke a key for good (the library refuses to un-revoke). Returns 1 if it was active."""
    revoked = PartnerAPIKey.objects.filter(pk=key_id, revoked=False).update(revoked=True)
    keys_changed()
    return revoked


# --- Webhooks ----------------------------------------------------------------------------------


def webhook_url_validate(url: str) -> None:
    """Only HTTPS to a host whose every address is public (see core.outbound; checked
    again before every delivery). Plain http to this machine only while developing or testing
    (DEBUG or LOYALTY_WEBHOOK_ALLOW_LOCALHOST), so a test server can receive deliveries."""
    try:
        target_check(url)
    except URLRefused as error:
        raise InvalidWebhookURL(detail=str(error)) from None


@transaction.atomic
def webhook_subscription_create(*, partner: Partner, url: str, events: Sequence[str]) -> WebhookSubscription:
    webhook_url_validate(url)
    unknown = [event for event in events if event not in WebhookEvent.values]
    if unknown or not events:
        raise InvalidWebhookURL(detail=_("unknown events: %(events)s") % {"events": ", ".join(unknown) or "-"})
    return WebhookSubscription.objects.create(partner=partner, url=url, events=list(dict.fromkeys(events)))


@transaction.atomic
def webhook_subscription_deactivate(*, subscription_id: int) -> int:
    """Stop sending to a subscription; its delivery history stays for the admin."""
    deactivated = WebhookSubscription.objects.filter(pk=subscription_id, active=True).update(active=False)
    subscriptions_changed()
    return deactivated


@transaction.atomic
def webhook_delivery_retry(*, delivery_id: int) -> bool:
    """Staff send a failed delivery again: a fresh round of attempts, queued after the commit."""
    changed = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.FAILED).update(
        status=WebhookDelivery.Status.PENDING, attempts=0)
    if changed:
        enqueue(webhook_deliver, delivery_id)
    return bool(changed)
