from __future__ import annotations

import pytest
from django.core.cache import cache

from tests import factories


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tiers(db):
    """The demo tier ladder: Basis (0), Silber (500), Gold (2000, ×1.25), Platin (5000, ×1.5)."""
    return factories.tier_ladder()


@pytest.fixture
def partner(db):
    return factories.PartnerFactory(name="Testmarkt GmbH")


@pytest.fixture
def base_rule(db):
    return factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)


@pytest.fixture
def member(tiers):
    return factories.enrolled_member()
