"""The console for challenges, badges and members' progress.

- Challenges: created and changed without code (the form explains each field and checks the
  goal's own fields, the target and that a reward is given: Challenge.clean). The list shows
  participants and completions per challenge from one annotated query.
- Badges: names in German and English and a picture from the shipped set.
- Progress and awarded badges are records written by the engine: read-only, filterable.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin

from . import selectors
from .models import Badge, Challenge, ChallengeProgress, MemberBadge


@admin.register(Challenge)
class ChallengeAdmin(ModelAdmin):
    list_display = ["name_de", "goal", "target", "starts_at", "ends_at", "audience", "active", "participants",
                    "completions"]
    list_filter = ["active", "goal"]
    search_fields = ["name_de", "name_en"]
    autocomplete_fields = ["segment", "badge"]
    raw_id_fields = ["reward", "survey"]
    fieldsets = [
        (None, {"fields": ["name_de", "name_en", "description_de", "description_en", "active"]}),
        (_("Goal"), {"fields": ["goal", "target", "category", "sku", "survey"],
                     "description": _("What the member has to do. The target counts purchases, referrals, answers "
                                      "or weeks, or the spend in EUR. Category, SKU and survey only for their goal. "
                                      "A streak counts weeks (Monday to Sunday) with at least one purchase in a row; "
                                      "one missed week is forgiven if the member shops the week after.")}),
        (_("Period and audience"), {"fields": ["starts_at", "ends_at", "segment"],
                                    "description": _("Only events in the period count. Without a segment every "
                                                     "member takes part.")}),
        (_("Reward"), {"fields": ["reward_points", "reward", "badge"],
                       "description": _("Given once, when the target is reached: points, a voucher, a badge, or "
                                        "several. A return later lowers the progress but never takes back a reward.")}),
    ]

    def get_queryset(self, request):
        return selectors.challenges_with_counts()

    @display(description=_("audience"))
    def audience(self, obj):
        return obj.segment.name if obj.segment_id else _("everyone")

    @display(description=_("participants"), ordering="participants")
    def participants(self, obj):
        return obj.participants

    @display(description=_("completions"), ordering="completions")
    def completions(self, obj):
        return obj.completions


@admin.register(Badge)
class BadgeAdmin(ModelAdmin):
    list_display = ["picture_preview", "name_de", "name_en", "awarded"]
    search_fields = ["name_de", "name_en"]
    fields = ["name_de", "name_en", "description_de", "description_en", "picture"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(award_count=Count("awards"))

    @display(description=_("picture"))
    def picture_preview(self, obj):
        return format_html('<img src="{}" alt="" width="32" height="32">', obj.picture_url)

    @display(description=_("awarded"), ordering="award_count")
    def awarded(self, obj):
        return obj.award_count


@admin.register(ChallengeProgress)
class ChallengeProgressAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["member", "challenge", "value", "completed_at", "rewarded", "points_awarded", "reward_note"]
    list_filter = ["challenge", "rewarded", ("completed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["member", "challenge"]
    search_fields = ["=member__customer_number", "member__email"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(MemberBadge)
class MemberBadgeAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["member", "badge", "challenge", "awarded_at"]
    list_filter = ["badge"]
    list_select_related = ["member", "badge", "challenge"]
    search_fields = ["=member__customer_number", "member__email"]
    show_full_result_count = False
