"""The points side of the member's console page: the 360° overview (points, purchases, vouchers),
"adjust points", "override tier" and the open vouchers an erasure cancels.

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
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from members import admin as members_admin
from members.forms_admin import AdjustPointsForm, TierOverrideForm
from members.models import Member

from .adjustments import points_adjust_by_staff
from .models import Redemption
from .selectors import member_overview
from .tiers import tier_override


class MemberAdmin(members_admin.MemberAdmin):
    actions_detail = ["adjust_points_action", "override_tier_action", *members_admin.MemberAdmin.actions_detail]

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
        ]
        return urls + super().get_urls()

    @action(description=_("Adjust points"), url_path="adjust-points-action", permissions=["adjust_points"])
    def adjust_points_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_adjust_points", args=[object_id]))

    @action(description=_("Override tier"), url_path="override-tier-action", permissions=["override_tier"])
    def override_tier_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_override_tier", args=[object_id]))

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
