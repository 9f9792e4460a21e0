"""The demo catalogue: believable, and safe to seed twice."""

from __future__ import annotations

from rewards.demo import seed_rewards_catalogue
from rewards.models import CashbackProgram, Reward, StampCardProgram


def test_the_demo_catalogue_is_believable_and_seeding_twice_changes_nothing(tiers):
    first = seed_rewards_catalogue()
    names = {reward.name_de for reward in first}
    assert {"Gratis Kaffee", "5 € Rabatt", "10 % Rabatt", "Kostenloser Versand", "VIP-Shoppingabend",
            "Spende an die Tafel"} <= names
    assert {reward.kind for reward in first} == set(Reward.Kind.values)
    vip = Reward.objects.get(name_de="VIP-Shoppingabend")
    assert vip.stock is not None and vip.min_tier is not None
    program = StampCardProgram.objects.get(name_de="Kaffee-Stempelkarte")
    assert (program.stamps_needed, program.category, program.reward.name_de) == (10, "Kaffee", "Gratis Kaffee")
    counts = (Reward.objects.count(), StampCardProgram.objects.count(), CashbackProgram.objects.count())
    assert [reward.pk for reward in seed_rewards_catalogue()] == [reward.pk for reward in first]
    assert (Reward.objects.count(), StampCardProgram.objects.count(), CashbackProgram.objects.count()) == counts
