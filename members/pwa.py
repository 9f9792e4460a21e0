"""The portal as an installable web app: the manifest, the service worker, the offline page, and
the push switch's subscribe/unsubscribe endpoints.

The service worker (templates/portal/sw.js, served at /sw.js so its scope is the whole site,
both language prefixes) keeps two caches:

- the app shell (styles, scripts, icons, the offline page), fetched without cookies so nothing
  of a member is in it;
- the card page of the signed-in member only ("treuepunkt-card"): each online visit of the card
  page stores the fresh copy (card number, barcode, balance and the time it was read). The copy
  is keyed to the portal account (`portal_account_key`, a keyed hash of the user id, sent in
  the X-Portal-Account header of the card page and as data-portal-account on every page): a
  page of another account or of nobody (signed out, session over) makes the worker drop it, and
  the sign-out button deletes it before the sign-out (static/portal/pwa.js). Offline the worker
  answers the card URL with the stored copy, with its "offline, as of …" notice shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from . import push
from .errors import PushRefused
from .models import Member

CARD_CACHE = "treuepunkt-card"
ICON_SIZES = (192, 512)
MAX_SUBSCRIPTION_BODY = 4096  # an endpoint (≤ 1000) and two keys, as JSON


def portal_account_key(user_id: int | None) -> str:
    """Which portal account a cached card belongs to, without naming it (no id in the cache)."""
    if not user_id:
        return ""
    return hmac.new(settings.SECRET_KEY.encode(), f"portal-card-cache:{user_id}".encode(),
                    hashlib.sha256).hexdigest()[:24]


def _shell_assets() -> list[str]:
    return [static("portal/portal.css"), static("portal/htmx.min.js"), static("portal/pwa.js"),
            static("portal/card-fullscreen.js"), static("portal/icons/icon.svg"),
            *(static(f"portal/icons/icon-{size}.png") for size in ICON_SIZES)]


def _per_language(name: str) -> dict[str, str]:
    urls = {}
    for code, _label in settings.LANGUAGES:
        with translation.override(code):
            urls[code] = reverse(name)
    return urls


@require_GET
@cache_control(no_cache=True, max_age=0)
def manifest(request: HttpRequest) -> HttpResponse:
    """The web app manifest in the page's language (the URL carries the language prefix)."""
    language = translation.get_language() or settings.LANGUAGE_CODE
    icons = [{"src": static(f"portal/icons/icon-{size}.png"), "sizes": f"{size}x{size}", "type": "image/png",
              "purpose": "any"} for size in ICON_SIZES]
    icons += [{"src": static("portal/icons/icon-maskable-512.png"), "sizes": "512x512", "type": "image/png",
               "purpose": "maskable"},
              {"src": static("portal/icons/icon.svg"), "sizes": "any", "type": "image/svg+xml", "purpose": "any"}]
    data = {
        "id": "/",
        "name": _("Treuepunkt – your loyalty card"),
        "short_name": "Treuepunkt",
        "description": _("Your loyalty card, points and vouchers, also offline at the till."),
        "lang": language,
        "dir": "ltr",
        "start_url": reverse("portal:dashboard"),
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": "#0b5d4b",
        "background_color": "#f5f7f6",
        "icons": icons,
        "shortcuts": [{"name": _("Your digital card"), "short_name": _("Card"), "url": reverse("portal:card")}],
    }
    return HttpResponse(json.dumps(data, ensure_ascii=False), content_type="application/manifest+json; charset=utf-8")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The worker's script, from the site root: its scope covers / and /en/ alike."""
    shell = _shell_assets()
    offline = _per_language("portal:offline")
    cards = _per_language("portal:card")
    # A new shell (another static file name after a deploy) is a new worker: the browser
    # installs it and the old shell cache goes.
    version = hashlib.sha256(json.dumps([shell, offline, cards]).encode()).hexdigest()[:12]
    context = {"version": version, "shell": json.dumps([*shell, *offline.values()]),
               "offline_pages": json.dumps(offline), "card_paths": json.dumps(sorted(cards.values())),
               "card_cache": CARD_CACHE, "default_language": settings.LANGUAGE_CODE}
    response = render(request, "portal/sw.js", context, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache, max-age=0"  # browsers check for a new worker on every visit
    return response


@require_GET
def offline(request: HttpRequest) -> HttpResponse:
    """What the worker shows for pages it has no copy of. It holds nothing of anyone."""
    return render(request, "portal/offline.html", {"card_url": reverse("portal:card")})


# --- Push switch ------------------------------------------------------------------------------

def push_context(member: Member) -> dict:
    """The push switch's data for a portal page (profile)."""
    return {"push_available": push.push_configured(),
            "push_not_available_text": push.push_not_configured_text(),
            "push_public_key": settings.LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY,
            "push_devices": member.push_subscriptions.count()}


def _subscription_data(request: HttpRequest) -> dict:
    if len(request.body) > MAX_SUBSCRIPTION_BODY:
        raise PushRefused(_("The request is too large."))
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise PushRefused(_("The request could not be read.")) from None
    if not isinstance(data, dict):
        raise PushRefused(_("The request could not be read."))
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    values = {"endpoint": data.get("endpoint"), "p256dh": keys.get("p256dh"), "auth": keys.get("auth")}
    return {name: value if isinstance(value, str) else "" for name, value in values.items()}


@require_POST
def push_subscribe_view(request: HttpRequest, member: Member) -> JsonResponse:
    from .views import _client_ip as client_ip

    try:
        data = _subscription_data(request)
        push.push_subscribe(member_id=member.pk, ip_address=client_ip(request), **data)
    except PushRefused as error:
        return JsonResponse({"ok": False, "message": str(error)}, status=422)
    return JsonResponse({"ok": True, "message": _("Notifications are switched on for this device.")})


@require_POST
def push_unsubscribe_view(request: HttpRequest, member: Member) -> JsonResponse:
    from .views import _client_ip as client_ip

    try:
        data = _subscription_data(request)
    except PushRefused as error:
        return JsonResponse({"ok": False, "message": str(error)}, status=422)
    push.push_unsubscribe(member_id=member.pk, endpoint=data["endpoint"], ip_address=client_ip(request))
    return JsonResponse({"ok": True, "message": _("Notifications are switched off for this device.")})
