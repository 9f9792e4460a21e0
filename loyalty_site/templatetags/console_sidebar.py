"""The console's sidebar list, kept once rendered (loyalty_site.navigation): {% load console_sidebar %}."""

from __future__ import annotations

from django import template

from loyalty_site import navigation

register = template.Library()

APP_LIST_TEMPLATE = "unfold/helpers/app_list.html"


@register.simple_tag(takes_context=True)
def sidebar_app_list(context) -> str:
    """What `{% include "unfold/helpers/app_list.html" with app_list=available_apps %}` renders,
    taken from the kept HTML when the page's `sidebar_html_key` (loyalty_site.admin_site) names it."""

    def render() -> str:
        app_list = context.template.engine.get_template(APP_LIST_TEMPLATE)
        with context.push(app_list=context.get("available_apps")):
            return app_list.render(context)

    key = context.get("sidebar_html_key")
    return render() if key is None else navigation.sidebar_html(key, render)
