"""Portal pages of offers (namespace "offers"): "Ihre Coupons" with one-click activation, and
the coupons card on the dashboard (members.portal)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import LoyaltyError
from members.models import Member
from members.portal import page_context
from members.views import portal_page

from . import selectors, services

DASHBOARD_COUPONS = 3


@portal_page
def portal(request, member: Member):
    coupons = selectors.coupon_views(member, include_expired=True)
    return render(request, "offers/portal.html", {
        "member": member,
        "current": [view for view in coupons if view.state in ("available", "activated", "upcoming")],
        "past": [view for view in coupons if view.state in ("used", "expired")],
    })


@portal_page
@require_POST
def activate(request, member: Member, pk: int):
    """One click: the coupon is active for the next matching purchase. Only the member's own:
    another member's coupon is "not found" like one that doesn't exist."""
    try:
        coupon = services.member_offer_activate(member_id=member.pk, member_offer_id=pk)
    except LoyaltyError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Coupon “%(name)s” activated: it applies by itself to your next matching "
                                    "purchase.") % {"name": coupon.offer.name})
    return redirect("offers:portal")


@page_context("dashboard")
def _dashboard_coupons(member: Member | None) -> dict:
    if member is None:
        return {}
    coupons = [view for view in selectors.coupon_views(member) if view.state in ("available", "activated")]
    return {"coupons": coupons[:DASHBOARD_COUPONS], "coupons_more": max(0, len(coupons) - DASHBOARD_COUPONS)}
