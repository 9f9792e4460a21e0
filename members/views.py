"""Member portal pages. Every view shows the signed-in member's own data only.

`portal_page` guards every private page: a login is required, staff accounts are turned away
(they work in the console, never as a member), and the member is looked up from the login,
so no URL carries a member id. Objects named in a URL (a voucher, a reward to redeem) are
fetched through the member (`get_object_or_404(member's vouchers, pk=…)`): someone else's id
is a 404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import wraps

from allauth.account.adapter import get_adapter
from allauth.account.decorators import reauthentication_required
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import LoyaltyError

from . import erasure, gdpr, pwa, selectors, services, wallet
from .barcodes import code128_svg, qr_svg
from .errors import WalletUnavailable
from .forms import ConsentForm, DeleteAccountForm, ProfileForm
from .models import ConsentRecord, Member, PrivacyRequest, Tier, format_member_code
from .portal import contributed_context, contributed_sections


def _client_ip(request) -> str | None:
    """The client's address as allauth's rate limits see it (trusted proxies configured there)."""
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:  # allauth's answer when it cannot tell: no reason to refuse a consent
        return None


def _member_for_verified_login(request) -> Member | None:
    """The safety net behind allauth's `email_confirmed` signal: a verified login always has a member."""
    address = (EmailAddress.objects.filter(user=request.user, verified=True).order_by("-primary", "id").first())
    if address is None:
        return None
    return services.member_link_or_enrol(user=request.user, email=address.email,
                                         language=(request.LANGUAGE_CODE or "de")[:2])


def portal_page(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.user.is_staff:
            return render(request, "portal/staff_refused.html", status=403)
        member = selectors.member_for_user(request.user) or _member_for_verified_login(request)
        if member is None:
            if selectors.login_waits_for_member_email_confirmation(request.user):
                messages.warning(request, _("Your customer account is waiting for its e-mail address to be confirmed: "
                                            "please use the link in the e-mail we sent to this address."))
            else:
                messages.warning(request, _("Please confirm your e-mail address first."))
            return redirect("account_email")
        request.member = member
        return view(request, member, *args, **kwargs)

    return wrapper


# --- Public pages -------------------------------------------------------------------------------

def home(request):
    if request.user.is_authenticated and not request.user.is_staff:
        return redirect("portal:dashboard")
    return render(request, "portal/home.html", {
        "tiers": Tier.objects.points_based().order_by("rank"),
        **contributed_context("home"),  # the first rewards of the catalogue (rewards.views)
    })


@require_http_methods(["GET", "POST"])
def consent_confirm(request, token: str):
    """The double opt-in link from the e-mail. GET only shows a button: mail scanners that open
    links must not confirm on the member's behalf; the POST confirms."""
    pending = selectors.consent_pending_for_token(token)
    if request.method == "POST" and pending is not None:
        record = services.consent_confirm(token=token, ip_address=_client_ip(request))
        if record is not None:
            return render(request, "portal/consent_confirm.html", {"confirmed": True})
        pending = None
    return render(request, "portal/consent_confirm.html", {"pending": pending, "confirmed": False},
                  status=200 if pending else 404)


@require_http_methods(["GET", "POST"])
def email_confirm(request, token: str):
    """The link mailed after staff changed a member's e-mail. GET only shows a button (mail
    scanners open links); the POST confirms."""
    pending = services.member_for_email_confirmation(token)
    if request.method == "POST" and pending is not None:
        if services.member_email_confirm(token=token) is not None:
            return render(request, "portal/email_confirm.html", {"confirmed": True})
        pending = None
    return render(request, "portal/email_confirm.html", {"pending": pending, "confirmed": False},
                  status=200 if pending else 404)


# --- Dashboard and card -------------------------------------------------------------------------

def _card_images(member: Member) -> dict:
    return {
        "card_qr": qr_svg(member.card_number, label=_("QR code of your card number")),
        "card_barcode": code128_svg(member.card_number, label=_("Barcode of your card number")),
    }


@portal_page
def dashboard(request, member: Member):
    consents = services.consent_current(member)
    context = {
        "member": member,
        **contributed_context("dashboard", member),  # progress, expiring, latest, open vouchers (rewards.views)
        "sections": contributed_sections("dashboard"),  # other apps' cards (challenges, coupons …)
        "ask_consent": all(record is None for record in consents.values()),
        "consent_form": ConsentForm(current=consents),
        **_card_images(member),
        "wallet": wallet.wallet_offer(),
    }
    return render(request, "portal/dashboard.html", context)


MEMBER_CODE_SESSION_KEY = "portal:member-code"


def _shown_member_code(request, member: Member) -> dict | None:
    """The member code issued on this device, while it is valid: the raw code lives only in the
    member's session (the database keeps its hash), so a reload shows it again."""
    shown = request.session.get(MEMBER_CODE_SESSION_KEY)
    if not shown or shown.get("member") != member.pk:
        return None
    valid_until = datetime.fromisoformat(shown["valid_until"])
    if valid_until <= timezone.now():
        request.session.pop(MEMBER_CODE_SESSION_KEY, None)
        return None
    code = format_member_code(shown["code"])
    return {"code": code, "valid_until": valid_until,
            "qr": qr_svg(code, label=_("QR code of your member code"))}


@portal_page
def card(request, member: Member):
    """Also the page the service worker keeps for offline use (members.pwa): the balance with the
    moment it was read, and the account the copy belongs to in a header the worker checks."""
    response = render(request, "portal/card.html", {
        "member": member, **_card_images(member), "balance_as_of": timezone.now(),
        "member_code": _shown_member_code(request, member),
        "member_code_minutes": settings.LOYALTY_MEMBER_CODE_MINUTES,
        "wallet": wallet.wallet_offer()})
    response["X-Portal-Account"] = pwa.portal_account_key(request.user.pk)
    response["Cache-Control"] = "private, no-cache"
    return response


def _wallet_unavailable(request, error: WalletUnavailable) -> HttpResponse:
    """Not set up: a 404 that says so. Set up but failing: a 503 (staff see why in `manage.py check`)."""
    broken = error.status.state is wallet.State.BROKEN
    return render(request, "portal/wallet_unavailable.html", {"wallet_name": error.status.wallet, "broken": broken},
                  status=503 if broken else 404)


@require_GET
@portal_page
def wallet_apple(request, member: Member):
    """The member's own card as an Apple Wallet pass (Safari on iPhone and Mac offers to add it)."""
    try:
        body = wallet.apple_pass(member)
    except WalletUnavailable as error:
        return _wallet_unavailable(request, error)
    response = HttpResponse(body, content_type=wallet.PKPASS_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{wallet.apple_pass_filename(member)}"'
    response["Cache-Control"] = "no-store"  # the balance of now, and personal data
    return response


@require_GET
@portal_page
def wallet_google(request, member: Member):
    """On to Google's save page with the member's own card, signed just now (the link carries the balance)."""
    try:
        url = wallet.google_save_url(member)
    except WalletUnavailable as error:
        return _wallet_unavailable(request, error)
    response = redirect(url)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@portal_page
def member_code(request, member: Member):
    """A fresh short-lived code for a partner (a web shop, another till) to find the member with:
    proof that the member is there, without handing over the card number."""
    try:
        row, code = services.member_code_issue(member_id=member.pk)
    except LoyaltyError as error:
        messages.error(request, str(error))
        return redirect("portal:card")
    request.session[MEMBER_CODE_SESSION_KEY] = {"member": member.pk, "code": code,
                                                "valid_until": row.expires_at.isoformat()}
    return redirect("portal:card")


# --- Profile and communication preferences ------------------------------------------------------

@portal_page
@require_http_methods(["GET", "POST"])
def profile(request, member: Member):
    form = ProfileForm(request.POST or None, instance=member)
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
        services.member_update_profile(member_id=member.pk, **fields)
        translation.activate(fields["language"])  # the next page, and the cookie, in the chosen language
        messages.success(request, _("Your details have been saved."))
        response = redirect("portal:profile")
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, fields["language"], samesite="Lax",
                            secure=settings.SESSION_COOKIE_SECURE)
        return response
    return render(request, "portal/profile.html", _profile_context(member, form=form))


def _profile_context(member: Member, **extra) -> dict:
    current = services.consent_current(member)
    return {
        "member": member,
        "login_email": member.user.email if member.user else member.email,
        "consent_form": ConsentForm(current=current),
        "consent_state": current,
        "consent_history": member.consents.order_by("-created_at", "-id")[:30],
        **pwa.push_context(member),
        **extra,
    }


@portal_page
@require_POST
def preferences(request, member: Member):
    """The consent checkboxes (profile page and the dashboard's first-time card)."""
    form = ConsentForm(request.POST, current=services.consent_current(member))
    if form.is_valid():
        created = services.consent_preferences_update(
            member=member, choices=form.choices(), source=ConsentRecord.Source.PORTAL,
            ip_address=_client_ip(request), text_version=settings.LOYALTY_CONSENT_TEXT_VERSION,
            confirm_base_url=request.build_absolute_uri("/"),
        )
        if any(record.confirmation_token for record in created):
            messages.info(request, _("Almost done: we have sent you an e-mail. Please confirm your subscription "
                                     "with the link in it."))
        elif created:
            messages.success(request, _("Your communication preferences have been saved."))
        else:
            messages.info(request, _("Nothing changed."))
    next_url = request.POST.get("next", "")
    return redirect("portal:dashboard" if next_url == "dashboard" else "portal:profile")


# The push switch on the profile page (static/portal/pwa.js posts the browser's subscription).
push_subscribe = portal_page(pwa.push_subscribe_view)
push_unsubscribe = portal_page(pwa.push_unsubscribe_view)


# --- Privacy: export and erasure ----------------------------------------------------------------

@portal_page
def privacy(request, member: Member):
    return render(request, "portal/privacy.html", {"member": member})


@portal_page
def privacy_export(request, member: Member):
    data = gdpr.member_export(member_id=member.pk, channel=PrivacyRequest.Channel.PORTAL)
    return privacy_export_response(data, member)


def privacy_export_response(data: dict, member: Member) -> HttpResponse:
    """The Art. 15/20 export as a JSON download (the portal's and the console's)."""
    body = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = f"treuepunkt-{member.customer_number}-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@portal_page
@reauthentication_required
@require_http_methods(["GET", "POST"])
def account_delete(request, member: Member):
    form = DeleteAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        erasure.member_erase(member_id=member.pk, channel=PrivacyRequest.Channel.PORTAL)
        logout(request)
        messages.success(request, _("Your account has been deleted. Thank you for having been with us."))
        return redirect("portal:home")
    return render(request, "portal/account_delete.html", {"member": member, "form": form,
                                                          **contributed_context("account_delete", member)})

