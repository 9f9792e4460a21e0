"""The points side of the member's console page: the 360° overview (points, purchases, vouchers),
"adjust points", "override tier", "sell VIP membership", "invite to a tier" (with the
memberships on the 360° page and a list filter) and the open vouchers an erasure cancels.

members/admin.py owns the member admin and imports no rewards; this module extends it and
registers the extended admin in its place (admin modules load in INSTALLED_APPS order, members'
first). URLs and permission names stay the members app's.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from members import admin as members_admin
from members.forms_admin import AdjustPointsForm, TierOverrideForm
from members.models import Member

from .adjustments import points_adjust_by_staff
from .admin_memberships import InviteToTierForm, MembershipFilter, SellMembershipForm
from .models import Redemption
from .selectors import member_overview
from .tier_memberships import tier_membership_invite, tier_membership_sell
from .tiers import tier_override


class MemberAdmin(members_admin.MemberAdmin):
    actions_detail = ["adjust_points_action", "override_tier_action", "sell_membership_action", "invite_action",
                      *members_admin.MemberAdmin.actions_detail]
    list_filter = [*members_admin.MemberAdmin.list_filter[:1], MembershipFilter,
                   *members_admin.MemberAdmin.list_filter[1:]]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        member = self.get_object(request, object_id)
        if member is not None:
            extra_context["overview"] = member_overview(member)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        urls = [
            path("<int:object_id>/adjust-points/", self.admin_site.admin_view(self.adjust_points_view),
                 name="members_member_adjust_points"),
            path("<int:object_id>/override-tier/", self.admin_site.admin_view(self.override_tier_view),
                 name="members_member_override_tier"),
            path("<int:object_id>/sell-membership/", self.admin_site.admin_view(self.sell_membership_view),
                 name="members_member_sell_membership"),
            path("<int:object_id>/invite-to-tier/", self.admin_site.admin_view(self.invite_view),
                 name="members_member_invite_to_tier"),
        ]
        return urls + super().get_urls()

    @action(description=_("Adjust points"), url_path="adjust-points-action", permissions=["adjust_points"])
    def adjust_points_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_adjust_points", args=[object_id]))

    @action(description=_("Override tier"), url_path="override-tier-action", permissions=["override_tier"])
    def override_tier_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_override_tier", args=[object_id]))

    @action(description=_("Sell or renew VIP membership"), url_path="sell-membership-action",
            permissions=["sell_membership"])
    def sell_membership_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_sell_membership", args=[object_id]))

    @action(description=_("Invite to a tier"), url_path="invite-action", permissions=["invite_to_tier"])
    def invite_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_invite_to_tier", args=[object_id]))

    def has_sell_membership_permission(self, request, object_id=None):
        return request.user.has_perm("rewards.sell_membership")

    def has_invite_to_tier_permission(self, request, object_id=None):
        return request.user.has_perm("rewards.invite_to_tier")

    def sell_membership_view(self, request, object_id):
        if not self.has_sell_membership_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=object_id)
        form = SellMembershipForm(request.POST or None)

        def sell(data):
            sale = tier_membership_sell(member_id=member.pk, tier=data["tier"], partner=data["partner"],
                                        store=data["store"], order_reference=data["order_reference"],
                                        staff_user=request.user)
            membership = sale.membership
            return _("%(tier)s from %(starts)s to %(ends)s, fee %(amount)s %(currency)s recorded as %(reference)s.") % {
                "tier": membership.tier, "starts": date_format(membership.starts, "SHORT_DATE_FORMAT"),
                "ends": date_format(membership.ends, "SHORT_DATE_FORMAT"), "amount": data["tier"].fee_amount,
                "currency": data["tier"].fee_currency, "reference": data["order_reference"]}

        return self._form_page(request, member, form, _("Sell or renew VIP membership"), sell)

    def invite_view(self, request, object_id):
        if not self.has_invite_to_tier_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=object_id)
        form = InviteToTierForm(request.POST or None)

        def invite(data):
            tier_membership_invite(member_id=member.pk, tier=data["tier"], ends=data["ends"], reason=data["reason"],
                                   staff_user=request.user)
            return _("Invited to %(tier)s until %(ends)s.") % {
                "tier": data["tier"], "ends": date_format(data["ends"], "SHORT_DATE_FORMAT")}

        return self._form_page(request, member, form, _("Invite to a tier"), invite)

    def has_adjust_points_permission(self, request, object_id=None):
        return request.user.has_perm("members.adjust_points")

    def has_override_tier_permission(self, request, object_id=None):
        return request.user.has_perm("members.override_tier")

    def adjust_points_view(self, request, object_id):
        if not self.has_adjust_points_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=object_id)
        form = AdjustPointsForm(request.POST or None)

        def adjust(data):  # support's limits (per entry, per day) are checked by the service
            points_adjust_by_staff(member_id=member.pk, points=data["points"], reason=data["reason"],
                                   staff_user=request.user)
            return _("%(points)+d points booked.") % {"points": data["points"]}

        return self._form_page(request, member, form, _("Adjust points"), adjust)

    def override_tier_view(self, request, object_id):
        if not self.has_override_tier_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=object_id)
        form = TierOverrideForm(request.POST or None, initial={"tier": member.tier_id})

        def override(data):
            tier_override(member_id=member.pk, tier=data["tier"], reason=data["reason"], staff_user=request.user,
                          until=data["until"])
            return _("Tier set to %(tier)s.") % {"tier": data["tier"]}

        return self._form_page(request, member, form, _("Override tier"), override)

    def erase_page_facts(self, member: Member) -> dict:
        open_vouchers = Redemption.objects.filter(member=member, status=Redemption.Status.ISSUED).count()
        return {**super().erase_page_facts(member), "open_vouchers": open_vouchers}


admin.site.unregister(Member)
admin.site.register(Member, MemberAdmin)
