"""Helpers that keep the console fast on big tables.

A changelist normally runs COUNT(*) over the whole filtered table on every page; at a
million members that is most of the page's time. `EstimatedCountPaginator` takes the
planner's estimate (pg_class.reltuples) for an unfiltered list and counts at most
COUNT_CAP rows of a filtered one: exact for small results, "at least" for big ones.

A deep page (OFFSET 125,000) is slow for another reason: the database reads every skipped row
from the table, with the columns and joins of the list. So from DEFERRED_OFFSET on the
paginator asks for the page's primary keys alone (the same filters and ordering: an index-only
scan when an index covers the ordering, as `member_joined` does) and then loads just those
rows. The page is still the same queryset (filtered by the keys, in the list's ordering), so
sorting, filters, search, select_related and annotations keep working.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 10_000
DEFERRED_OFFSET = 1_000


def estimated_row_count(model, using: str = "default") -> int | None:
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is not None and not query.where:
            estimate = estimated_row_count(queryset.model, queryset.db)
            if estimate is not None and estimate > COUNT_CAP:
                return estimate
        if query is not None:
            return queryset.order_by()[: COUNT_CAP + 1].count()
        return super().count

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        queryset = self.object_list
        if bottom < DEFERRED_OFFSET or not isinstance(queryset, QuerySet) or not queryset.ordered:
            return super().page(number)
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = list(queryset.values_list("pk", flat=True)[bottom:top])
        # The ordering (total: the admin adds the primary key) puts the rows in the page's order.
        return self._get_page(queryset.filter(pk__in=keys), number, self)


class ReadOnlyAdminMixin:
    """Records that change only through their services (or never): staff read them in the
    console, nobody adds, edits or deletes them there."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Labels in tabular inlines -------------------------------------------------------------------

class AriaLabelledForm:
    """A form mixin: every widget carries its field's label as aria-label. A tabular inline
    shows the labels once, as column headings, so a screen reader (and axe-core) finds inputs
    without a name; the aria-label gives each one its name, in the language of the request."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.setdefault("aria-label", str(field.label))


class LabelledInlineMixin:
    """For TabularInline subclasses: their forms get AriaLabelledForm."""

    def get_formset(self, request, obj=None, **kwargs):
        form = kwargs.get("form", self.form)
        if not issubclass(form, AriaLabelledForm):
            kwargs["form"] = type(f"Labelled{form.__name__}", (AriaLabelledForm, form), {})
        return super().get_formset(request, obj, **kwargs)


# --- Bulk actions ------------------------------------------------------------------------------

def apply_each(ids, action) -> tuple[int, int]:
    """Run `action(id)` for each id, each in its own service call (its own transaction): returns
    how many went through and how many the service refused (a LoyaltyError), for the message
    the console shows."""
    from core.errors import LoyaltyError

    done = refused = 0
    for item_id in ids:
        try:
            action(item_id)
            done += 1
        except LoyaltyError:
            refused += 1
    return done, refused
