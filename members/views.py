"""Member portal pages. Every view shows the signed-in member's own data only."""

from __future__ import annotations

from django.shortcuts import render


def home(request):
    member = getattr(request.user, "member", None) if request.user.is_authenticated else None
    return render(request, "portal/home.html", {"member": member})
