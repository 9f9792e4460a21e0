"""The member portal's challenges page and the dashboard card (members.portal)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import render

from members.models import Member
from members.portal import page_context
from members.views import portal_page

from . import selectors
from .streaks import grace_weeks

# Running challenges on the dashboard card; the page lists them all.
DASHBOARD_CHALLENGES = 3


@portal_page
def portal(request, member: Member):
    running, completed = selectors.member_challenges(member)
    return render(request, "engagement/portal.html", {
        "member": member,
        "running": running,
        "completed": completed,
        "badges": selectors.member_badges(member),
        "streak": selectors.member_streak_weeks(member),
        "grace_weeks": grace_weeks(),
    })


@page_context("dashboard")
def dashboard_card(member: Member | None) -> dict[str, Any]:
    if member is None:
        return {}
    running, _completed = selectors.member_challenges(member)
    return {"engagement": {
        "challenges": running[:DASHBOARD_CHALLENGES],
        "more": max(0, len(running) - DASHBOARD_CHALLENGES),
        "badges": selectors.member_badges(member),
        "streak": selectors.member_streak_weeks(member),
    }}
