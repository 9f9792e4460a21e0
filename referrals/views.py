"""Portal pages of referrals: the share link /r/<code> (public) and "Freunde werben" (members)."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from members.models import Member
from members.portal import page_context
from members.views import portal_page

from . import links, services


def share_link(request, code: str):
    """A friend's invitation: remember the code until sign-up, then on to the sign-up form."""
    if request.user.is_authenticated:
        return redirect("referrals:portal" if not request.user.is_staff else "portal:home")
    program = services.program_in_force()
    referrer = services.referrer_for_code(code)
    if program is None or referrer is None:
        messages.warning(request, _("This invitation link is not valid any more, but you are welcome to join."))
        return redirect("account_signup")
    # Who invited them is shown on the sign-up page itself (SignupReferralForm.inviter_name).
    response = redirect("account_signup")
    links.remember(request, response, code=services.normalise_code(code), max_age_days=program.attribution_days)
    return response


def share_url(request, code: str) -> str:
    """The link without a language prefix: the friend reads it in their own language."""
    with translation.override("de"):
        path = reverse("referrals:share", args=[code])
    return request.build_absolute_uri(path)


@portal_page
def portal(request, member: Member):
    program = services.program_in_force()
    code = services.referral_code_for(member)
    url = share_url(request, code)
    text = _("Join the Treuepunkt loyalty programme with my link and we both get a bonus: %(url)s") % {"url": url}
    return render(request, "referrals/portal.html", {
        "member": member,
        "program": program,
        "code": code,
        "share_url": url,
        "share_text": text,
        "mailto": "mailto:?subject={}&body={}".format(quote(_("An invitation to Treuepunkt")), quote(text)),
        "whatsapp": "https://wa.me/?text=" + quote(text),
        "rows": services.referrals_of(member),
        "received": services.referral_received_by(member),
    })


@page_context("dashboard")
def _dashboard_invitation(member: Member | None) -> dict:
    return {"referral_received": services.referral_received_by(member)}
