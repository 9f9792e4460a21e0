"""Pages behind the links in campaign messages (unsubscribe, raffle entry), the public page of
a raffle (its seed commitment and, after the draw, the proof) and the raffles in the portal.

The message links are signed (campaigns.links) rather than behind a login: the link was sent
to the member's own address, and unsubscribing must never need a password. The portal pages go
through `members.views.portal_page` (login, no staff, the member from the login): a member
enters only in their own name.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import LoyaltyError
from members.portal import page_context
from members.views import portal_page

from . import links, raffles, selectors, sending
from .errors import InvalidLink
from .models import Campaign, Message, RaffleEntry


def _message_for(token: str, purpose: str) -> Message | None:
    try:
        message_id = links.message_id_from_token(token, purpose)
    except InvalidLink:
        return None
    return Message.objects.select_related("member", "campaign").filter(pk=message_id).first()


def masked_address(address: str) -> str:
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
        context = {"message": message, "address": masked_address(message.to_address or member.email),
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
            "closed": closed if entry is None else None, "proof": _proof(campaign),
        }, status=422 if error else 200)


# --- The public raffle page: commitment before, proof after the draw ----------------------------

def _proof(campaign: Campaign) -> dict:
    """What anyone may see of a raffle: the seed's hash from the start, the seed, the tickets'
    fingerprint and the winning tickets once drawn (never who holds a ticket)."""
    drawn = campaign.drawn_at is not None
    return {
        "campaign": campaign, "drawn": drawn, "seed_hash": campaign.draw_seed_hash,
        "seed": campaign.draw_seed if drawn else "",
        "fingerprint": campaign.draw_entries_hash if drawn else "",
        "winning_tickets": selectors.raffle_winning_tickets(campaign) if drawn else [],
        "url": links.raffle_proof_url(campaign.pk),
    }


def raffle_proof(request, pk: int):
    campaign = selectors.raffle_public(pk)
    if campaign is None:
        raise Http404
    return render(request, "campaigns/raffle_proof.html", {
        "campaign": campaign, "proof": {**_proof(campaign), "url": ""},  # no link to the page itself
        "entries_count": campaign.entries_count,
        "open_problem": raffles.raffle_open_problem(campaign, timezone.now()),
    })


def raffle_tickets_text(request, pk: int):
    """The ticket list the fingerprint is the SHA-256 of (published once the raffle is drawn)."""
    campaign = selectors.raffle_public(pk)
    if campaign is None or campaign.drawn_at is None:
        raise Http404
    response = HttpResponse(raffles.tickets_text(selectors.raffle_tickets(campaign)),
                            content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="raffle-{campaign.pk}-tickets.txt"'
    return response


# --- The member's raffles in the portal ---------------------------------------------------------

@portal_page
def portal(request, member):
    return render(request, "campaigns/portal.html", {
        "member": member, "offers": selectors.raffles_open_for(member),
        "entries": list(selectors.raffle_entries_of(member)[:50]),
    })


@portal_page
@require_POST
def portal_enter(request, member, pk: int):
    """One click: enter the raffle in the member's own name (entering twice keeps the first)."""
    campaign = get_object_or_404(Campaign, pk=pk, kind=Campaign.Kind.RAFFLE)
    had_entry = RaffleEntry.objects.filter(campaign=campaign, member=member).exists()
    try:
        entry = raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    except LoyaltyError as error:
        messages.error(request, str(error))
    else:
        text = (_("You are already taking part in %(raffle)s with ticket %(ticket)s.") if had_entry
                else _("You are taking part in %(raffle)s with ticket %(ticket)s. Good luck!"))
        messages.success(request, text % {"raffle": campaign.name, "ticket": entry.ticket})
    return redirect("portal:dashboard" if request.POST.get("next") == "dashboard" else "raffles:portal")


WINS_SHOWN_DAYS = 60  # a win stays on the dashboard for this long after the draw


@page_context("dashboard")
def _dashboard_raffles(member) -> dict:
    if member is None:
        return {}
    since = timezone.now() - timedelta(days=WINS_SHOWN_DAYS)
    return {
        "raffle_offers": selectors.raffles_open_for(member, limit=3),
        "raffle_wins": list(selectors.raffle_entries_of(member).filter(won=True, campaign__drawn_at__gte=since)[:3]),
    }
