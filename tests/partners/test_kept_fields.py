"""The purchase body's serializer keeps its fields per thread (partners.api.base.KeptFieldsMixin):
each new serializer still validates with its own data and context, never the previous one's."""

from __future__ import annotations

import threading
from decimal import Decimal

from partners.api.authentication import PartnerPrincipal, active_key
from rewards.api import PurchaseCreateSerializer
from tests import factories


def _body(member, **extra) -> dict:
    return {"card_number": member.card_number, "order_reference": "A-1", "amount": "10.00", "currency": "EUR",
            **extra}


def _principal(partner) -> PartnerPrincipal:
    raw_key = factories.PartnerAPIKeyFactory(partner=partner).raw_key
    return PartnerPrincipal(active_key(raw_key.partition(".")[0]))


def test_each_serializer_validates_with_its_own_context_and_data(member, partner):
    other = factories.PartnerFactory(name="Zweithandel")
    ours, theirs = factories.StoreFactory(partner=partner, code="S1"), factories.StoreFactory(partner=other, code="S1")
    factories.relate(member, partner), factories.relate(member, other)

    first = PurchaseCreateSerializer(data=_body(member, store="S1"), context={"principal": _principal(partner)})
    assert first.is_valid(), first.errors
    second = PurchaseCreateSerializer(data=_body(member, store="S1", amount="5.00"),
                                      context={"principal": _principal(other)})
    assert second.is_valid(), second.errors

    assert first.validated_data["store"] == ours and second.validated_data["store"] == theirs
    assert (first.validated_data["amount"], second.validated_data["amount"]) == (Decimal("10.00"), Decimal("5.00"))
    assert second.fields["store"].root is second and second.fields["lines"].child.root is second
    bad = PurchaseCreateSerializer(data=_body(member, amount="-1"), context={"principal": _principal(partner)})
    assert not bad.is_valid() and set(bad.errors) == {"amount"}
    assert second.errors == {}


def test_the_fields_are_copied_once_per_thread_not_per_serializer():
    here = PurchaseCreateSerializer().fields["amount"]
    assert PurchaseCreateSerializer().fields["amount"] is here

    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(PurchaseCreateSerializer().fields["amount"]))
    thread.start()
    thread.join()
    assert elsewhere[0] is not here
