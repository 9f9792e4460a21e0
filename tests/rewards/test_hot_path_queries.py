"""The hot paths run a fixed number of queries: a later change cannot quietly add one. When a
change needs another query on purpose, raise the number here in the same commit and say why."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from rewards.ledger import points_credit
from tests import factories
from tests.api_support import purchase_body

# At most this many queries per request, as counted on 2026-11-30 (lower them when you optimise;
# the key lookup is cached per process after the first request).
PURCHASE_EARN = 7  # idempotency lock and record, the member's look-up, the earn (one statement: lock, purchase,
# lines, breakdown, ledger entry, member update, qualifying points: rewards.ledger_sql), idempotency record, and the
# request's savepoint (a transaction outside tests)
BALANCE_READ = 1  # the member with its figures and the relation check, in one statement (the key and tiers
# are cached)
REDEMPTION = 21
VOUCHER_CONSUME = 12


def _count(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code in (200, 201), response.text
    return len(captured), response


def test_hot_path_query_counts(api, member):
    api.post("/purchases/", purchase_body(member, "WARM-UP"))  # rule cache and tier lookups warm
    earn, _ = _count(lambda: api.post("/purchases/", purchase_body(member, "Q-1")))
    # The warm-up purchase related the member to the partner: the id reaches them.
    balance, _ = _count(lambda: api.get(f"/members/{member.public_id}/balance/"))
    points_credit(member_id=member.pk, points=500, reason="queries")
    reward = factories.RewardFactory(points_cost=100)
    redeem, voucher = _count(lambda: api.post("/redemptions/", {"card_number": member.card_number,
                                                                "reward_id": reward.pk}))
    consume, _ = _count(lambda: api.post("/vouchers/consume/", {"code": voucher.json()["code"], "store": "S1"}))
    assert earn <= PURCHASE_EARN and balance <= BALANCE_READ, (earn, balance)
    assert redeem <= REDEMPTION and consume <= VOUCHER_CONSUME, (redeem, consume)


# A batch of one chunk of campaign messages in a fixed number of queries, whatever its size.
# Per chunk 11: campaign status, savepoint (a transaction outside tests), member ids, member
# locks, message locks, consent, cap, claim update, release, expiring points, sent update.
# Per batch and campaign 5: campaign ids, progress, "done?" (campaign, busy rows), done. Plus 1:
# the survey e-mails of the cap window (they share the frequency cap, feedback.services.survey_contacts).
CAMPAIGN_SEND_CHUNK = 17


def test_a_chunk_of_campaign_messages_costs_the_same_queries_for_5_or_45_members(tiers):
    from campaigns import sending, services
    from campaigns.models import Message

    counts = []
    for size in (5, 40):
        members = [factories.enrolled_member() for _ in range(size)]
        for member in members:
            factories.ConsentRecordFactory(member=member, purpose="email")
            points_credit(member_id=member.pk, points=100, reason="queries")  # the expiry lookup runs
        campaign = factories.CampaignFactory()
        factories.VariantFactory(campaign=campaign)
        services.campaign_launch(campaign_id=campaign.pk)
        services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as captured:
            report = sending.messages_send(message_ids=ids, chunk_size=50)
        assert report.sent == len(ids)  # the second campaign also reaches the first five
        counts.append(len(captured))
    assert counts[0] == counts[1] <= CAMPAIGN_SEND_CHUNK, counts
