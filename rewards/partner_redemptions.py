"""Which partner (and store) issued a voucher through the API (`PartnerRedemption`)."""

from __future__ import annotations

from django.db import transaction

from partners.models import Partner, Store

from .models import PartnerRedemption, Redemption


@transaction.atomic
def partner_redemption_record(*, partner: Partner, redemption: Redemption,
                              store: Store | None = None) -> PartnerRedemption:
    """Remember which partner (and store) issued a voucher: only that partner (a key restricted to
    stores: only for that store) may read or cancel it by id."""
    return PartnerRedemption.objects.create(partner=partner, redemption=redemption, store=store)
