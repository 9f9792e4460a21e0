"""The console's result pages show numbers and dates in the reader's language (#23): 1.234,50
and 04.12.2026 in German, 1,234.50 and 4 Dec 2026 in English, names of tiers in that language."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from offers.models import MemberOffer
from rewards.purchases import LineData, purchase_record
from tests import factories

pytestmark = pytest.mark.django_db


def console_page(client, name: str, pk: int, language: str) -> str:
    with translation.override(language):
        url = reverse(name, args=[pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_offer_results_group_thousands_with_the_languages_separators(admin_client, tiers, partner, base_rule):
    offer = factories.OfferFactory(effect="bonus", value=10, valid_from=timezone.now() - timedelta(days=5))
    coupon = factories.MemberOfferFactory(offer=offer)
    MemberOffer.objects.filter(pk=coupon.pk).update(activated_at=timezone.now() - timedelta(hours=1))
    factories.MemberOfferFactory(offer=offer, holdout=True)
    purchase_record(member_id=coupon.member_id, partner=partner, order_reference="BIG-1", amount=Decimal("3497.94"),
                    lines=[LineData(amount=Decimal("3497.94"))])
    german = console_page(admin_client, "admin:offers_offer_change", offer.pk, "de")
    english = console_page(admin_client, "admin:offers_offer_change", offer.pk, "en")
    assert ">3.497,94<" in german and "3497,94" not in german
    assert ">3,497.94<" in english and "3497.94<" not in english


def test_survey_results_name_tiers_and_months_in_the_readers_language(admin_client, tiers):
    survey = factories.SurveyFactory()
    tier = tiers[0]
    type(tier).objects.filter(pk=tier.pk).update(name_de="Grün", name_en="Green")
    for score in (10, 9, 3):
        factories.ResponseFactory(survey=survey, score=score, tier=tier, created_at=timezone.now())
    english = console_page(admin_client, "admin:feedback_survey_change", survey.pk, "en")
    german = console_page(admin_client, "admin:feedback_survey_change", survey.pk, "de")
    assert "<td>Green</td>" in english and "<td>Grün</td>" not in english
    assert 'data-testid="headline">33.3<' in english and 'data-testid="headline">33,3<' in german
    month = timezone.localdate()
    with translation.override("en"):
        assert month.strftime("%B %Y") in english and month.strftime("%Y-%m") not in english
