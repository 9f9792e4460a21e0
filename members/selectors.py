"""Reads about members shared by the console, the portal and the API."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .models import Member, MemberCode, PartnerRelation, hash_member_code, normalize_member_code

# --- Member portal -----------------------------------------------------------------------------
# Reads for the member's own pages. Every function takes the signed-in member and returns only
# rows that belong to them (or to duplicates merged into them: the same person).

def member_for_user(user) -> Member | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Member.objects.select_related("tier").filter(user=user).first()


def login_waits_for_member_email_confirmation(user) -> bool:
    """Does a verified address of this login belong to a member whose address staff changed and
    nobody has confirmed yet (members.services.member_link_or_enrol does not link those)?"""
    from allauth.account.models import EmailAddress

    addresses = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    return any(Member.objects.filter(email__iexact=address, email_confirmed=False).exists() for address in addresses)


def consent_pending_for_token(token: str):
    """The e-mail consent waiting for this double opt-in token, if it is still the latest word."""
    from .models import ConsentRecord
    from .services import consent_current

    if not token:
        return None
    pending = (ConsentRecord.objects.filter(confirmation_token=token, confirmed_at__isnull=True)
               .select_related("member").first())
    if pending is None or consent_current(pending.member)[pending.purpose] != pending:
        return None
    return pending


# --- Partner API: which members a partner may see and change ----------------------------------
# A partner sees a member it is related to (the member enrolled or bought there: PartnerRelation)
# or one who is present: the request carries what a till scans or the member shows (card number,
# customer number, a member code from the portal). Both are conditions on the member row, in ORM
# and in SQL form (the balance answer is one raw statement), so every read and write of the API
# filters by the same rule, in the statement that finds the member.

PRESENCE_FIELDS = ("card_number", "customer_number", "member_code")


@dataclass(frozen=True)
class PartnerReach:
    """Whose relations count for a caller: the partner's, or only those at some of its stores (a
    store-restricted API key). `store_ids` None: all of them, also those without a store."""

    partner_id: int
    store_ids: frozenset[int] | None = None

    def relations(self) -> QuerySet[PartnerRelation]:
        relations = PartnerRelation.objects.filter(partner_id=self.partner_id)
        if self.store_ids is not None:
            relations = relations.filter(store_id__in=sorted(self.store_ids))
        return relations

    def related(self) -> Exists:
        """True for the member of the outer query (its pk) if the caller is related to them: one
        probe of the relation_unique index (member, partner, store)."""
        return Exists(self.relations().filter(member_id=OuterRef("pk")))

    def related_sql(self, alias: str = "m") -> tuple[str, dict]:
        params: dict = {"reach_partner": self.partner_id}
        stores = ""
        if self.store_ids is not None:
            names = [f"reach_store{n}" for n in range(len(self.store_ids))]
            params.update(zip(names, sorted(self.store_ids), strict=True))
            stores = f" AND r.store_id IN ({', '.join(f'%({name})s' for name in names)})" if names else " AND 1 = 0"
        sql = (f"EXISTS (SELECT 1 FROM {PartnerRelation._meta.db_table} r WHERE r.member_id = {alias}.id "  # noqa: S608 - table names and placeholders only
               f"AND r.partner_id = %(reach_partner)s{stores})")
        return sql, params


def members_visible_to(reach: PartnerReach) -> QuerySet[Member]:
    """The members a partner (or a store-restricted key) may see without their presence."""
    return Member.objects.exclude(status=Member.Status.ERASED).filter(reach.related())


@dataclass(frozen=True)
class Presence:
    """Proof in a request that the member is at the partner's till or shop right now."""

    field: str  # one of PRESENCE_FIELDS
    value: str

    def _code_hash(self) -> str | None:
        code = normalize_member_code(self.value)
        return hash_member_code(code) if code else None

    def matches(self) -> Q:
        """The condition on Member."""
        if self.field != "member_code":
            return Q(**{self.field: self.value.strip()})
        code_hash = self._code_hash()
        if code_hash is None:
            return Q(pk__in=[])
        return Q(Exists(MemberCode.objects.filter(member_id=OuterRef("pk"), code_hash=code_hash,
                                                  purpose=MemberCode.Purpose.PRESENCE,
                                                  expires_at__gt=timezone.now())))

    def sql(self, alias: str = "m") -> tuple[str, dict]:
        if self.field != "member_code":
            column = {"card_number": "card_number", "customer_number": "customer_number"}[self.field]
            return f"{alias}.{column} = %(presence)s", {"presence": self.value.strip()}
        code_hash = self._code_hash()
        if code_hash is None:
            return "1 = 0", {}
        return (f"EXISTS (SELECT 1 FROM {MemberCode._meta.db_table} c WHERE c.member_id = {alias}.id "  # noqa: S608
                "AND c.code_hash = %(presence)s AND c.purpose = %(presence_purpose)s AND c.expires_at > %(now)s)",
                {"presence": code_hash, "presence_purpose": MemberCode.Purpose.PRESENCE, "now": timezone.now()})

