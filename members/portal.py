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
