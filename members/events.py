"""Events the members app publishes (see core/events.py for how events work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.events import Event
from core.stored_texts import StoredText


@dataclass(frozen=True, kw_only=True)
class MemberEnrolled(Event):
    """A new member. `via`: "api" (a partner's till or shop), "portal" (a verified sign-up, with or
    without a referral code), "console" (staff verified a login's e-mail), "import"."""

    name = "member.enrolled"
    via: str
    customer_number: str = ""
    card_number: str = ""

    def data(self) -> dict[str, Any]:
        # Under "member", as partners got it before events (the announcer adds the API id there).
        return {"via": self.via, "member": {"customer_number": self.customer_number,
                                            "card_number": self.card_number}}


@dataclass(frozen=True, kw_only=True)
class MembersMerged(Event):
    """`member_id` is the survivor; the duplicate's rows move to it in the same transaction
    (each app moves its own rows in a subscriber)."""

    name = "member.merged"
    duplicate_id: int
    merge_id: int | None = None  # the MemberMerge row; subscribers record what they moved on it


@dataclass(frozen=True, kw_only=True)
class MemberErased(Event):
    """Personal data of the member is gone (Art. 17 DSGVO); apps erase what they hold."""

    name = "member.erased"
    staff_user_id: int | None = None  # who asked (console), None: the member or a job
    merged_member_ids: tuple[int, ...] = ()  # members merged into this one earlier: the same person


@dataclass(frozen=True, kw_only=True)
class OpeningBalanceImported(Event):
    """A balance carried over from another system by a members import; rewards books it in the
    ledger. `new_member`: the import inserted the member in this transaction with its
    `points_balance` already equal to these points (one write per row for speed), so the ledger
    only books the entries and checks the sum; otherwise the ledger credits the points."""

    name = "member.opening_balance"
    points: int
    reference: str
    source: str
    new_member: bool
    reason: str | StoredText  # a system text (core.stored_texts) or staff's free text
    staff_user_id: int | None = None
