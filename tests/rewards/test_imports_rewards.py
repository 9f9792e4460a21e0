"""The rewards catalogue from a file: matched by German name, stock stays a counter."""

from __future__ import annotations

from decimal import Decimal

from rewards.models import Reward
from tests import factories
from tests.import_helpers import csv_bytes, dry_run, errors_by_line, full_import
from transfers.models import ImportJob

HEADER = "Name;Name (Englisch);Art;Punkte;Wert;Währung;Bestand;Mindeststufe;Gültig bis;Aktiv\n"


def test_rewards_are_created_and_updated_by_their_german_name(tiers):
    existing = factories.RewardFactory(name_de="Kaffee gratis", points_cost=100, stock=7,
                                       kind=Reward.Kind.FREE_PRODUCT, value=None, currency="")
    content = csv_bytes(HEADER
                        + "5-€-Gutschein;5 € voucher;Wertgutschein;500;5,00;EUR;100;;31.12.2030;ja\n"
                        + "kaffee GRATIS;Free coffee;Gratisprodukt;150;;;50;Silber;;ja\n"
                        + "10 % Rabatt;10 % off;Prozentgutschein;800;10;;;Gold;;nein\n", "cp1252")
    job = full_import(content, kind="rewards")
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.counts == {"new": 2, "updated": 1, "unchanged": 0, "skipped": 0, "invalid": 0}
    voucher = Reward.objects.get(name_de="5-€-Gutschein")
    assert (voucher.kind, voucher.points_cost, voucher.value, voucher.currency, voucher.stock) == (
        "amount", 500, Decimal("5.00"), "EUR", 100)
    existing.refresh_from_db()
    assert (existing.points_cost, existing.name_en, existing.min_tier.name_de) == (150, "Free coffee", "Silber")
    assert existing.stock == 7  # a counter redemptions move: not overwritten by a file
    assert any("stock" in warning["message"] for warning in job.warnings)
    assert not Reward.objects.get(name_de="10 % Rabatt").active

    again = full_import(content, kind="rewards")
    assert again.counts["unchanged"] == 3


def test_invalid_reward_rows_are_reported(tiers):
    content = csv_bytes(HEADER
                        + "Ohne Art;;;100;;;;;;\n"
                        + "Prozente;;Prozentgutschein;100;150;;;;;\n"
                        + "Euro ohne Währung;;Wertgutschein;100;5;;;;;\n"
                        + "Unbekannt;;Zaubertrank;100;;;;;;\n"
                        + "Null Punkte;;Spende;0;;;;;;\n"
                        + "Stufe;;Spende;10;;;;Diamant;;\n")
    job = dry_run(content, kind="rewards")
    assert job.counts["invalid"] == 6
    errors = errors_by_line(job)
    assert errors[2] == [("Art", "needed for a new reward")]
    assert errors[3] == [("Wert", "a percentage cannot be more than 100")]
    assert errors[4] == [("Währung", "an amount voucher needs its currency")]
    assert errors[5][0][0] == "Art"
    assert errors[6] == [("Punkte", "must be positive")]
    assert errors[7] == [("Mindeststufe", "unknown tier “Diamant”")]
