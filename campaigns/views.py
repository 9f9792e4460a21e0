"""Pages behind the links in campaign messages: unsubscribe and raffle entry.

Both are reached through a signed link (campaigns.links) rather than a login: the link was
sent to the member's own address, and unsubscribing must never need a password.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import LoyaltyError

from . import links, raffles, sending
from .errors import InvalidLink
from .models import Message, RaffleEntry


def _message_for(token: str, purpose: str) -> Message | None:
    try:
        message_id = links.message_id_from_token(token, purpose)
    except InvalidLink:
        return None
    return Message.objects.select_related("member", "campaign").filter(pk=message_id).first()


def _masked(address: str) -> str:
    """e***@example.org / +49 *** 89: enough to recognise, not enough to learn an address."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:3]} *** {address[-2:]}" if len(address) > 6 else "***"


def _invalid(request):
    return render(request, "campaigns/link_invalid.html", status=404)


# RFC 8058 one-click unsubscribe: mail clients POST "List-Unsubscribe=One-Click" to this URL
# without a session or a CSRF token, so this one view (and no other) is exempt. It is safe:
# the signed token is the authorisation and the only effect is withdrawing a consent.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    message = _message_for(token, links.UNSUBSCRIBE)
    if message is None:
        return _invalid(request)
    member = message.member
    with translation.override(member.language or settings.LANGUAGE_CODE):
        context = {"message": message, "address": _masked(message.to_address or member.email),
                   "channel": message.get_channel_display()}
        if request.method == "POST":
            sending.message_unsubscribe(message_id=message.pk, ip_address=request.META.get("REMOTE_ADDR"))
            return render(request, "campaigns/unsubscribe_done.html", context)
        # GET only shows the question: link scanners and previews fetch links, they don't POST.
        return render(request, "campaigns/unsubscribe.html", context)


@require_http_methods(["GET", "POST"])
def raffle(request, token: str):
    message = _message_for(token, links.RAFFLE)
    if message is None:
        return _invalid(request)
    campaign, member = message.campaign, message.member
    with translation.override(member.language or settings.LANGUAGE_CODE):
        entry = RaffleEntry.objects.filter(campaign=campaign, member=member).first()
        error = None
        if request.method == "POST" and entry is None:
            try:
                entry = raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
            except LoyaltyError as problem:
                error = str(problem)
        closed = raffles.raffle_open_problem(campaign, timezone.now())
        return render(request, "campaigns/raffle.html", {
            "campaign": campaign, "member": member, "entry": entry, "error": error,
            "closed": closed if entry is None else None,
        }, status=422 if error else 200)
