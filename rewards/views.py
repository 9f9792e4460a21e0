"""The member portal's points and vouchers pages: the programme terms, activity (the ledger
explained), the reward catalogue, redeeming, the vouchers; and the points side of members' home
page, dashboard and account deletion page (members.portal). Part of the "portal" namespace
(loyalty_site/urls.py joins them with members' pages); `portal_page` (members.views) finds the
signed-in member."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from core.errors import LoyaltyError
from members.barcodes import code128_svg, qr_svg
from members.models import Member
from members.portal import page_context
from members.views import portal_page

from . import eligibility, selectors
from .donations import member_donated_total
from .models import Donation, Redemption, Reward
from .vouchers import catalogue_for, redemption_create

ACTIVITY_PAGE_SIZE = 20

# --- Activity -------------------------------------------------------------------------------------

@portal_page
def activity(request, member: Member):
    page = Paginator(selectors.ledger_entries(member), ACTIVITY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"member": member, "page": page, "lines": selectors.explain_entries(member, page.object_list),
               "pending": selectors.pending_purchases(member) if page.number == 1 else []}
    if request.htmx:  # "show more": only the next rows and the next button
        return render(request, "portal/_activity_rows.html", context)
    return render(request, "portal/activity.html", context)


# --- Rewards and vouchers ---------------------------------------------------------------------

@portal_page
def rewards(request, member: Member):
    rows = catalogue_for(member)
    return render(request, "portal/rewards.html", {
        "member": member,
        "affordable": [reward for reward, reason in rows if reason is None],
        "unavailable": [(reward, reason) for reward, reason in rows if reason is not None],
    })


def _catalogue_reward(pk: int):
    return get_object_or_404(Reward.objects.select_related("min_tier", "cause"), pk=pk, active=True, in_catalogue=True)


@portal_page
@require_http_methods(["GET", "POST"])
def reward_redeem(request, member: Member, pk: int):
    """GET: the confirmation step (a fragment for htmx, a page otherwise). POST: redeem."""
    reward = _catalogue_reward(pk)
    if request.method == "POST":
        try:
            voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
        except LoyaltyError as error:
            messages.error(request, str(error))
            return redirect("portal:rewards")
        if voucher.is_donation:  # no voucher to show: a thank-you and the member's donations
            messages.success(request, _("Thank you! Your donation of %(amount)s € goes to %(cause)s.")
                             % {"amount": formats.number_format(reward.value, 2), "cause": reward.cause.name})
            return redirect("portal:donations")
        messages.success(request, _("Here is your voucher for %(reward)s.") % {"reward": reward.name})
        return redirect("portal:voucher", pk=voucher.pk)
    reason = eligibility.unavailable_reason(reward, member, scopes=eligibility.MEMBER_VIEW)
    context = {"member": member, "reward": reward, "reason": reason,
               "balance_after": member.points_balance - reward.points_cost}
    template = "portal/_redeem_confirm.html" if request.htmx else "portal/redeem.html"
    return render(request, template, context)


@portal_page
def donations(request, member: Member):
    return render(request, "portal/donations.html", {
        "member": member, "donated_total": member_donated_total(member),
        "donations": Donation.objects.filter(member=member).select_related("cause").order_by("-created_at", "-id"),
    })


@portal_page
def vouchers(request, member: Member):
    now = timezone.now()
    mine = list(selectors.vouchers_of(member).order_by("-issued_at", "-id"))
    return render(request, "portal/vouchers.html", {
        "member": member,
        "open": [voucher for voucher in mine if voucher.status == "issued" and voucher.expires_at >= now],
        "closed": [voucher for voucher in mine if not (voucher.status == "issued" and voucher.expires_at >= now)],
    })


@portal_page
def voucher(request, member: Member, pk: int):
    voucher = get_object_or_404(selectors.vouchers_of(member), pk=pk)
    usable = voucher.status == "issued" and voucher.expires_at >= timezone.now()
    context = {"member": member, "voucher": voucher, "usable": usable}
    if usable:
        context["voucher_qr"] = qr_svg(voucher.code, label=_("QR code of the voucher"))
        context["voucher_barcode"] = code128_svg(voucher.code, label=_("Barcode of the voucher"))
    return render(request, "portal/voucher.html", context)


# --- The points side of members' pages (members.portal) ------------------------------------------

def terms(request):
    return render(request, "portal/terms.html", {"terms": selectors.program_terms()})


@page_context("home")
def _home_rewards(member: Member | None) -> dict:
    return {"rewards": [reward for reward, _reason in catalogue_for(None)][:3]}


@page_context("dashboard")
def _dashboard_points(member: Member | None) -> dict:
    return {
        "progress": selectors.tier_progress(member),
        "membership": selectors.membership_status(member),
        "expiring": selectors.points_expiring_schedule(member),
        "latest": selectors.explain_entries(member, selectors.ledger_entries(member)[:5]),
        "open_vouchers": selectors.vouchers_of(member).filter(status="issued", expires_at__gte=timezone.now())
        .order_by("expires_at")[:3],
    }


@page_context("dashboard")
def _dashboard_donations(member: Member | None) -> dict:
    return {"donated_total": member_donated_total(member) if member is not None else None}


@page_context("account_delete")
def _open_vouchers_before_deletion(member: Member | None) -> dict:
    return {"open_vouchers": Redemption.objects.filter(member=member, status=Redemption.Status.ISSUED).count()}
