"""Which member a partner's request may reach: the one resolver every viewset uses, and the
serializer fields the apps' API modules name members with.

The model (also in the API's description, settings.SPECTACULAR_SETTINGS):

- Members are shared by all partners of the programme, but a partner sees and changes a member
  only when it can show that the member is **present** or **related**:
  - present: the request carries what the till scanned or the member showed: `card_number`,
    `customer_number`, or a `member_code` (short-lived, from the member's portal card);
  - related: the member enrolled or bought with this partner (`PartnerRelation`); a key
    restricted to stores counts only relations at its stores.
- Member ids in the API are opaque (`Member.public_id`, a random UUID), never the primary key:
  they can't be counted through, and an id alone reaches only related members.
- Spending points (redemptions) needs presence; an id is never enough.
- A member the caller can't reach answers exactly like a member that does not exist (404), so
  nobody learns who is a member from the answers.

The conditions themselves (`PartnerReach`, `Presence`) live in members.selectors, in ORM and
SQL form; this module reads them out of a request and turns a miss into the API's errors.

Presence can be guessed (customer numbers are short), so look-ups that match nobody are counted
per API key in the shared cache (settings.LOYALTY_API_PRESENCE_MISSES, a fixed window,
core.ratelimit). Beyond the limit every presence look-up of that key answers 429 with
Retry-After until the window ends; requests by member id (related members) go on working. The
count costs a cache round trip on misses only: a hit (every till's sale) pays nothing. A process
remembers a key it has refused until the window ends and refuses it without asking the cache;
another process learns it at that key's next miss there and answers its hits until then. For a
guesser nearly every request is a miss, so every process refuses it almost at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.fields import ProhibitNullCharactersValidator

from core import ratelimit
from core.ratelimit import current_window, parse_rate, window_count_up
from partners.api.authentication import PartnerPrincipal
from partners.api.exceptions import PresenceRateLimited

from .models import Member
from .selectors import PRESENCE_FIELDS, PartnerReach, Presence

__all__ = ["MEMBER_ID_HELP", "MEMBER_REFERENCE_FIELDS", "PRESENCE_FIELDS", "MemberIdField",
           "MemberReferenceSerializer", "Presence", "member_condition", "member_not_found", "presence_from",
           "presence_guard", "presence_missed", "reach_of", "resolve_member"]


def reach_of(principal: PartnerPrincipal) -> PartnerReach:
    return PartnerReach(partner_id=principal.partner.pk, store_ids=principal.allowed_store_ids)


def presence_from(data: Mapping, *, field: str = "card_number") -> Presence | None:
    """The presence proof in request data (body or query parameters): at most one of them."""
    given = [name for name in PRESENCE_FIELDS if data.get(name) not in (None, "")]
    if not given:
        return None
    if len(given) > 1:
        raise serializers.ValidationError({field: [
            _("Name the member by only one of card_number, customer_number or member_code.")]})
    name = given[0]
    value = str(data[name])
    if "\x00" in value:  # PostgreSQL text cannot hold it: a field error, not a failed query
        raise serializers.ValidationError({name: [ProhibitNullCharactersValidator.message]})
    return Presence(field=name, value=value)


def member_condition(principal: PartnerPrincipal, *, public_id: UUID | str | None = None,
                     presence: Presence | None = None) -> Q:
    """The condition on Member for what the request may reach: by presence, any member who is
    present (and has the id, if one is named too); by id alone, only a related member."""
    condition = ~Q(status=Member.Status.ERASED)
    if public_id is not None:
        condition &= Q(public_id=public_id)
    if presence is not None:
        return condition & presence.matches()
    return condition & Q(reach_of(principal).related())


def member_not_found() -> NotFound:
    # The same answer for "no such member" and "not yours to see": existence is not leaked.
    return NotFound(_("No member with this id for this partner. A member the partner has not enrolled or "
                      "sold to is found by card number, customer number or member code."))


def resolve_member(principal: PartnerPrincipal, *, public_id: UUID | str | None = None,
                   presence: Presence | None = None, queryset: QuerySet[Member] | None = None,
                   fields: Sequence[str] | None = None) -> Member:
    """The member the request names, if the caller may reach them (one query): from `queryset`,
    or with only `fields` loaded (see reachable_member).

    A presence proof that matches nobody is a field error (a mistyped card number at a till);
    an id the caller can't reach is a 404, whatever the reason."""
    if public_id is None and presence is None:
        raise ValueError("name the member by id or presence")
    if presence is not None:
        presence_guard(principal)
    if fields is not None:
        member = reachable_member(principal, public_id=public_id, presence=presence, fields=fields)
    else:
        queryset = queryset if queryset is not None else Member.objects.all()
        member = queryset.filter(member_condition(principal, public_id=public_id, presence=presence)).first()
    if member is not None:
        return member
    if presence is not None:
        presence_missed(principal)
    if public_id is not None:
        raise member_not_found()
    raise serializers.ValidationError({presence.field: [presence_miss_message(presence)]})


def reachable_member(principal: PartnerPrincipal, *, public_id: UUID | str | None, presence: Presence | None,
                     fields: Sequence[str]) -> Member | None:
    """member_condition's member with only `fields` loaded, in SQL (the conditions' SQL forms in
    members.selectors): every purchase names its member, and the ORM took longer to build this
    statement than PostgreSQL takes to answer it. Card, customer number and id are unique."""
    names = [Member._meta.pk.attname if name == "pk" else Member._meta.get_field(name).attname for name in fields]
    columns = ", ".join(f"m.{Member._meta.get_field(name).column}" for name in names)
    reach, params = presence.sql() if presence is not None else reach_of(principal).related_sql()
    conditions = ["m.status <> %(erased)s", reach]
    params = {**params, "erased": Member.Status.ERASED}
    if public_id is not None:
        conditions.append("m.public_id = %(public_id)s")
        params["public_id"] = Member._meta.get_field("public_id").get_db_prep_value(public_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {Member._meta.db_table} m "  # noqa: S608 - names and placeholders only
                       f"WHERE {' AND '.join(conditions)}", params)
        row = cursor.fetchone()
    return None if row is None else Member.from_db(connection.alias, names, row)


def presence_miss_message(presence: Presence) -> str:
    if presence.field == "member_code":
        return _("This member code is unknown or has expired: ask the member to show a new one.")
    return _("No member with this number.")


# --- Guessing presence: misses counted per key -------------------------------------------------

# API key id → the end (unix time) of the window in which this process refused it.
_refused_until: dict[int, float] = {}


def presence_guard(principal: PartnerPrincipal) -> None:
    """Call before a presence look-up: refuses a key this process saw beyond its miss limit in
    the current window. No cache round trip: a till's sale pays nothing for the limit."""
    until = _refused_until.get(principal.key.pk)
    if until is None:
        return
    now = ratelimit.now()
    if now < until:
        raise PresenceRateLimited(seconds=max(1, math.ceil(until - now)))
    _refused_until.pop(principal.key.pk, None)


def presence_missed(principal: PartnerPrincipal) -> None:
    """Call after a presence look-up that matched nobody: counts the miss for the key and, beyond
    settings.LOYALTY_API_PRESENCE_MISSES in the window, refuses with 429 (and remembers it)."""
    if not settings.LOYALTY_API_PRESENCE_MISSES:
        return
    limit, period = parse_rate(settings.LOYALTY_API_PRESENCE_MISSES)
    window = current_window(period)
    if window_count_up(window.key(f"loyalty:presence-misses:{principal.key.pk}"), period) > limit:
        _refused_until[principal.key.pk] = window.end
        raise PresenceRateLimited(seconds=window.seconds_left)


# --- Naming a member in a request, and in an answer ------------------------------------------

MEMBER_REFERENCE_FIELDS = ("member_id", *PRESENCE_FIELDS)
MEMBER_REFERENCE_HELP = ("Name the member by exactly one of `member_id`, `card_number`, `customer_number` or "
                         "`member_code` (see oneOf; spending points needs one of the last three). Any other "
                         "number of them is refused with 400 and a field error under `member_id`.")
MEMBER_ID_HELP = ("The member's id in the API (opaque; reaches only members this partner enrolled or sold to, "
                  "at the key's stores).")


class MemberReferenceSerializer(serializers.Serializer):
    """A member named by exactly one of: `member_id` (reaches a related member), or what shows
    that the member is present: `card_number`, `customer_number`, `member_code`. Needs the
    caller in the context ("principal"); see resolve_member."""

    presence_required = False  # True: an id is not enough (spending points)
    member_optional = False  # True: no member at all is fine too (anonymous survey answers)
    member_fields = ("pk", "public_id", "tier_id", "status", "customer_number")  # what the views read

    member_id = serializers.UUIDField(required=False, help_text=MEMBER_ID_HELP)
    card_number = serializers.CharField(required=False, max_length=32, help_text="Scanned at the till: presence.")
    customer_number = serializers.CharField(required=False, max_length=40, help_text="Presence, like the card.")
    member_code = serializers.CharField(required=False, max_length=20,
                                        help_text="The short-lived code from the member's portal card: presence.")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        given = [name for name in MEMBER_REFERENCE_FIELDS if attrs.get(name) not in (None, "")]
        if not given and self.member_optional:
            attrs["member"] = None  # anonymous
            return attrs
        if len(given) != 1:
            raise serializers.ValidationError({"member_id": [_(
                "Name the member by exactly one of member_id, card_number, customer_number or member_code.")]})
        if given == ["member_id"] and self.presence_required:
            raise serializers.ValidationError({"member_id": [_(
                "Spending points needs the member to be present: send card_number, customer_number or "
                "member_code instead of member_id.")]})
        attrs["member"] = resolve_member(
            self.context["principal"], public_id=attrs.get("member_id"), presence=presence_from(attrs),
            fields=self.member_fields)
        return attrs


def member_reference_alternatives(serializer) -> list[dict]:
    """The OpenAPI `oneOf` that says what MemberReferenceSerializer.validate checks: exactly one
    of the identifiers (each alternative requires one; two given match two alternatives, which
    oneOf refuses), without member_id when presence is required, or none when the member is optional."""
    names = PRESENCE_FIELDS if serializer.presence_required else MEMBER_REFERENCE_FIELDS
    alternatives = [{"title": name, "required": [name]} for name in names]
    if serializer.member_optional:
        alternatives.append({"title": "anonymous",
                             "not": {"anyOf": [{"required": [name]} for name in MEMBER_REFERENCE_FIELDS]}})
    return alternatives


class MemberReferenceSchema(OpenApiSerializerExtension):
    """Every request body that names a member (purchases, redemptions, complaints, survey
    answers) states the "exactly one identifier" rule as a `oneOf`, so a client generated from the
    schema alone knows it; a body that breaks it gets a 400 with the error under `member_id`."""

    target_class = MemberReferenceSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["oneOf"] = member_reference_alternatives(self.target)
            schema["description"] = "\n\n".join(filter(None, [schema.get("description"), MEMBER_REFERENCE_HELP]))
        return schema


@extend_schema_field(OpenApiTypes.UUID)
class MemberIdField(serializers.Field):
    """A member's id as the API shows it: the opaque public id, never the database key. Reads an
    annotation `member_public_id` when the queryset has one (lists: no query per row), else the
    object's loaded member."""

    def __init__(self, **kwargs):
        kwargs.update(read_only=True, source="*")
        super().__init__(**kwargs)

    def to_representation(self, instance):
        public_id = getattr(instance, "member_public_id", None)
        if public_id is None:
            member = getattr(instance, "member", None)
            public_id = member.public_id if member is not None else None
        return str(public_id) if public_id is not None else None
