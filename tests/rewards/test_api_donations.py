"""Donation rewards through the partner API: the redemption endpoint answers with the donation
(no voucher code, no expiry), the catalogue names the cause, the schema says so."""

from __future__ import annotations

from decimal import Decimal

from rewards.ledger import points_credit
from rewards.models import Donation, DonationCause, Redemption, Reward
from tests import factories


def _give(member, points):
    points_credit(member_id=member.pk, points=points, reason="Test")


def _donation_reward() -> Reward:
    cause = DonationCause.objects.create(name_de="Tafel", name_en="Food bank", organisation="Tafel e. V.",
                                         website="https://www.tafel.de/")
    return factories.RewardFactory(kind=Reward.Kind.DONATION, cause=cause, points_cost=200, value=Decimal("2.00"),
                                   currency="EUR", name_en="Donation to the food bank")


def test_redeeming_a_donation_reward_returns_the_donation_and_no_voucher(api, member):
    _give(member, 500)
    reward = _donation_reward()
    response = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["code"], body["expires_at"], body["points"]) == ("donated", None, None, 200)
    assert body["donation"]["cause"] == {"id": reward.cause_id, "name": "Food bank", "organisation": "Tafel e. V.",
                                         "website": "https://www.tafel.de/"}
    assert (body["donation"]["amount"], body["donation"]["currency"]) == ("2.00", "EUR")
    assert Donation.objects.get().redemption_id == body["id"]
    member.refresh_from_db()
    assert member.points_balance == 300
    assert api.get(f"/redemptions/{body['id']}/").json()["donation"]["amount"] == "2.00"
    # A partner cannot reverse a donation (staff do, in the running month).
    refused = api.post(f"/redemptions/{body['id']}/cancel/")
    assert refused.status_code == 409 and refused.json()["code"] == "voucher_not_cancellable"
    assert Redemption.objects.get().status == "donated"


def test_a_voucher_answer_has_no_donation(api, member):
    _give(member, 500)
    voucher = api.post("/redemptions/", {"card_number": member.card_number,
                                         "reward_id": factories.RewardFactory(points_cost=100).pk}).json()
    assert voucher["donation"] is None and voucher["code"]


def test_redeeming_a_donation_without_enough_points_changes_nothing(api, member):
    _give(member, 100)
    response = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": _donation_reward().pk})
    assert response.status_code == 422 and response.json()["code"] == "insufficient_points"
    assert not Donation.objects.exists() and not Redemption.objects.exists()


def test_the_catalogue_names_the_cause_of_a_donation_reward(api, member):
    reward = _donation_reward()
    rows = {row["id"]: row for row in api.get("/rewards/").json()["results"]}
    assert rows[reward.pk]["cause"]["organisation"] == "Tafel e. V."
    assert rows[reward.pk]["value"] == "2.00"


def test_the_schema_describes_the_donation_in_the_redemption_answer(api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    redemption = schema["components"]["schemas"]["Redemption"]["properties"]
    assert redemption["code"]["nullable"] is True and "donation" in redemption["code"]["description"]
    assert redemption["expires_at"]["nullable"] is True
    assert "donation" in redemption
    operation = schema["paths"]["/api/v1/redemptions/"]["post"] if "/api/v1/redemptions/" in schema["paths"] else None
    described = operation or next(path["post"] for name, path in schema["paths"].items()
                                  if name.endswith("/redemptions/") and "post" in path)
    assert "donation" in described["description"].lower()
