"""What other apps show on members' portal pages, without members importing them.

The home page, the dashboard and the account deletion page are members' pages, but part of what
they show is the points programme's (the catalogue's first rewards, the tier progress, the
latest ledger lines, the open vouchers). Rewards registers a context function per page in its
AppConfig.ready(); the page merges what every registered function returns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .models import Member

# page name ("home", "dashboard", "account_delete") -> functions(member or None) -> context
ContextFunction = Callable[[Member | None], dict[str, Any]]
_contributions: dict[str, list[ContextFunction]] = defaultdict(list)
# page name -> (order, template name): cards other apps add to a page (challenges, coupons …)
_sections: dict[str, list[tuple[int, str]]] = defaultdict(list)


def page_context(page: str) -> Callable[[ContextFunction], ContextFunction]:
    """Decorator: the function's dict goes into the context of the portal page `page`."""
    def register(function: ContextFunction) -> ContextFunction:
        if function not in _contributions[page]:
            _contributions[page].append(function)
        return function
    return register


def contributed_context(page: str, member: Member | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for function in _contributions[page]:
        context.update(function(member))
    return context


def page_section(page: str, template_name: str, *, order: int = 50) -> None:
    """Another app's card on the portal page `page`: the page includes `template_name` with its
    own context (so the app's `page_context` function supplies what the card shows; a card with
    nothing to show renders nothing). Lower `order` comes first."""
    if (order, template_name) not in _sections[page]:
        _sections[page].append((order, template_name))


def contributed_sections(page: str) -> list[str]:
    return [template_name for _order, template_name in sorted(_sections[page])]
