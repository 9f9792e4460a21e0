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

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
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


# --- Search by customer or card number ---------------------------------------------------------

MEMBER_NUMBER_FIELDS = ("customer_number", "card_number")


def member_number_lookup(term: str) -> dict[str, str] | None:
    """A search term shaped like a card number (8 or more digits, spaces allowed) or a customer
    number (a letter, then digits) as the lookup on the member's unique index; None for any other
    term. Customer numbers are stored in capitals, so "k123456789" finds K123456789."""
    compact = term.strip().replace(" ", "")
    if compact.isdigit() and len(compact) >= 8:
        return {"card_number": compact}
    if len(compact) >= 2 and compact[0].isalpha() and compact[1:].isdigit():
        return {"customer_number": compact.upper()}
    return None


def related_model(model, path: str):
    """The model at the end of a relation path ("purchase__member" from PurchaseReturn: Member)."""
    for name in path.split(LOOKUP_SEP):
        model = model._meta.get_field(name).related_model
    return model


def path_field(model, path: str):
    """The field a lookup path ends on ("purchase__order_reference": Purchase.order_reference)."""
    relations, _sep, name = path.rpartition(LOOKUP_SEP)
    owner = related_model(model, relations) if relations else model
    return owner._meta.get_field(name)


def rows_of_related(model, path: str, ids: list) -> Q:
    """`path__in=ids` without a join: for a path over several relations ("purchase__member") the
    keys of each hop are read first (through that table's index on the relation), so the big
    table is filtered by its own column (`purchase_id IN (…)`), which an index answers."""
    first, _sep, rest = path.partition(LOOKUP_SEP)
    if not rest:
        return Q(**{f"{first}__in": ids})
    hop = related_model(model, first)
    keys = list(hop._base_manager.filter(rows_of_related(hop, rest, ids)).values_list("pk", flat=True))
    return Q(**{f"{first}__in": keys})


class MemberNumberSearchMixin:
    """Search by customer or card number through the unique indexes, on a changelist of rows
    that belong to a member (ledger, purchases, referrals, answers …).

    Django's admin turns `search_fields = ["=member__customer_number", "=member__card_number",
    "=reference"]` into one OR of `UPPER(...) = UPPER(term)` over a join with the members table:
    no index serves it, so every search read the whole big table (issue #24: ~400 ms per search at
    20,000,000 ledger entries). This mixin instead
      1. looks the member up through the unique index of its customer or card number, then
      2. filters `member_id IN (ids)` OR each other exact field (`=reference`, `=order_reference`,
         `=id`: an order reference that looks like a customer number is still found) with a plain
         equality, so the planner answers each branch with its own index (a BitmapOr); a path
         over several relations ("purchase__member") reads the keys of each hop first.
    It does so for a term shaped like a customer or card number (`member_number_lookup`), and for
    any term on a page whose search fields are all exact. Fragment fields (`comment`,
    `member__email`: contains-searches, a full scan) are left out for a number; other terms on a
    page with fragment fields get Django's search unchanged. Exact text fields are compared with
    the term as typed, in capitals and in small letters (Django's `=` ignores case, but
    `UPPER(column)` has no index). No join is added, so no DISTINCT (may_have_duplicates False).

    The member paths and exact fields come from `search_fields`; `search_exact_filter` is the
    hook for a field whose index needs more than the field (a composite unique index).
    """

    show_full_result_count = False  # a COUNT(*) over the whole table on every page
    paginator = EstimatedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        member_paths, exact_fields, fragments = self.member_number_search_plan(request)
        if not term or not member_paths or (fragments and member_number_lookup(term) is None):
            return super().get_search_results(request, queryset, search_term)
        found = Q()
        member_ids = self.searched_member_ids(related_model(queryset.model, member_paths[0]), term)
        if member_ids:
            for path in member_paths:
                found |= rows_of_related(queryset.model, path, member_ids)
        for field_path in exact_fields:
            values = self.exact_search_values(queryset.model, field_path, term)
            if values:
                found |= self.search_exact_filter(field_path, values)
        if not found:
            return queryset.none(), False
        return queryset.filter(found), False

    @staticmethod
    def searched_member_ids(member_model, term: str) -> list[int]:
        """The members whose customer or card number is the term, through the unique indexes."""
        lookup = member_number_lookup(term)
        if lookup is not None:
            condition = Q(**lookup)
        else:  # an odd number (an import's own scheme): compared as typed and in capitals, like Django's =
            condition = Q(customer_number__in=[term, term.upper()]) | Q(card_number=term)
        return list(member_model._base_manager.filter(condition).order_by().values_list("pk", flat=True))

    def member_number_search_plan(self, request) -> tuple[list[str], list[str], bool]:
        """From `search_fields`: the relation paths to the member searched by number
        ("member", "referrer" …), the other exact (`=`) fields, and whether there are fragment
        (contains, starts-with) fields."""
        member_paths: list[str] = []
        exact_fields: list[str] = []
        fragments = False
        for spec in self.get_search_fields(request):
            spec = str(spec)
            if not spec.startswith("="):
                fragments = True
                continue
            path = spec[1:]
            relation, _sep, name = path.rpartition(LOOKUP_SEP)
            if relation and name in MEMBER_NUMBER_FIELDS:
                if relation not in member_paths:
                    member_paths.append(relation)
            else:
                exact_fields.append(path)
        return member_paths, exact_fields, fragments

    @staticmethod
    def exact_search_values(model, field_path: str, term: str) -> list:
        """The values an exact field is compared with: a text as typed, in capitals and in small
        letters; a number only if the term is one that fits the column."""
        field = path_field(model, field_path)
        if field.get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField"):
            return list(dict.fromkeys([term, term.upper(), term.lower()]))
        try:
            value = field.to_python(term)
        except ValidationError:
            return []
        if isinstance(value, int):
            low, high = connections[model._default_manager.db].ops.integer_field_range(field.get_internal_type())
            if (low is not None and value < low) or (high is not None and value > high):
                return []
        return [value]

    def search_exact_filter(self, field_path: str, values: list) -> Q:
        """The condition for one exact field; override where the field's index leads with another
        column (a unique (partner, order_reference) needs the partners named)."""
        return Q(**{f"{field_path}__in": values})
