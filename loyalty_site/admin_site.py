"""The console's admin site: Unfold's, minus work no page shows (issue #24).

Two costs every console page paid and none needed:

- Django puts the full list of apps and models (`available_apps`, permission checks and a
  reverse() for every registered model, and a query for the programme settings' add button) into
  every page's context. Our pages show the grouped sidebar instead (loyalty_site.navigation);
  Unfold reads `available_apps` only for its "all applications" panel (off) and for users with
  an empty sidebar. The list is now built when a template first reads it: the same list, the
  same pages, about an eighth less CPU on a changelist.
- The sidebar is the same for every page of a user with the same permissions in the same
  language, but was built and rendered on every request: it is now kept per process
  (loyalty_site.navigation), its HTML keyed also by which item is active: about a fifth less.

Installed through ConsoleAdminConfig (loyalty_site.apps), Django's way to choose the default
site, with Unfold's BasicAppConfig, which leaves the choice to the project.
"""

from __future__ import annotations

from functools import partial

from django.utils.functional import SimpleLazyObject
from unfold.sites import UnfoldAdminSite

from .navigation import sidebar_html_key


class ConsoleAdminSite(UnfoldAdminSite):
    def get_app_list(self, request, app_label=None):
        # Lazy: built on first use (iteration, len, truth, indexing), then kept for the request.
        return SimpleLazyObject(partial(super().get_app_list, request, app_label))

    def each_context(self, request):
        context = super().each_context(request)
        context["sidebar_html_key"] = sidebar_html_key(request, context)
        return context
