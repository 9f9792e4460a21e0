"""The SQL source of the purchase earn in one statement (part of the ledger: rewards.ledger calls
it, `purchase_earn_statement`). A migration creates the function from this text; a test checks the
database runs exactly this text, so a change here needs a new migration with it.

Why a function: the ORM path (rewards.purchases, the executable specification) spends ~10 ms of
CPU building ~12 statements a purchase; PostgreSQL needs well under a millisecond for them. Here
the same writes are one round trip. The rules stay in Python (`compute_points`): the caller
passes the result for each tier the member might hold (`p_variants`, keyed by tier id, "" for no
tier) and the function picks the one of the tier it reads under the member's lock.

The function does what `purchase_record` does, in the same order and under the same lock
(member, then the purchase row through its unique index):
1. lock the member (`FOR UPDATE`), reading whether it is related to the partner at the store and
   the buyer annotations (`p_flags_sql`: 'rewards_buyer_flags', the function rewards.ledger
   installs from them after every migrate, or a SELECT of a boolean array, $1 = member id, when
   the installed one doesn't match this process's annotations);
2. the same (partner, order reference) again: the first purchase ('existing') or, for another
   member, 'conflict'; a member who is not active: 'inactive' (nothing written in any of these);
3. 'fallback' (nothing written) when Python has to run inside the transaction after all: a flag of
   a bonus provider is true (`p_python_flags`, positions in the flags) or the tier has no variant;
4. insert the purchase (a concurrent insert of the reference by another member: 'conflict'), its
   lines and breakdown, the partner relation on a first purchase, the ledger entry when the points
   are not held, and one UPDATE of the member row (balance, held points, statistics);
5. the qualifying points when the member's tier (0: none) is in `p_evaluate_tiers`, for the tier
   engine (rewards.tiers), which decides in Python.
"""

from __future__ import annotations

from .figures import QUALIFYING_POINTS_SQL

EARN_FUNCTION = "rewards_purchase_earn"

EARN_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION rewards_purchase_earn(
    p_member_id bigint, p_partner_id bigint, p_store_id bigint, p_channel text, p_order_reference text,
    p_amount numeric, p_currency text, p_occurred_at timestamptz, p_now timestamptz, p_hold boolean,
    p_available_at timestamptz, p_skus text[], p_categories text[], p_quantities integer[], p_amounts numeric[],
    p_variants jsonb, p_entry_at timestamptz, p_expires_at timestamptz, p_reason text,
    p_reason_code text, p_reason_params jsonb, p_eur numeric,
    p_recent boolean, p_flags_sql text, p_python_flags integer[], p_evaluate_tiers bigint[],
    p_since timestamptz, p_until timestamptz,
    OUT status text, OUT purchase_id bigint, OUT public_id uuid, OUT member_status text, OUT tier_id bigint,
    OUT flags boolean[], OUT line_ids bigint[], OUT breakdown_ids bigint[], OUT balance bigint,
    OUT qualifying bigint)
LANGUAGE plpgsql VOLATILE AS $earn$
DECLARE
    v_related boolean;
    v_existing_id bigint;
    v_existing_member bigint;
    v_variant jsonb;
    v_total bigint;
    v_earned bigint;
    v_pending bigint;
BEGIN
    SELECT m.status, m.tier_id, m.public_id,
           EXISTS (SELECT 1 FROM members_partnerrelation r
                   WHERE r.member_id = m.id AND r.partner_id = p_partner_id
                     AND coalesce(r.store_id, 0) = coalesce(p_store_id, 0))
      INTO member_status, tier_id, public_id, v_related
      FROM members_member m WHERE m.id = p_member_id FOR UPDATE OF m;
    IF NOT FOUND THEN
        status := 'missing';
        RETURN;
    END IF;
    IF p_flags_sql = 'rewards_buyer_flags' THEN  -- installed from the registry: its plan stays cached
        flags := rewards_buyer_flags(p_member_id);
    ELSIF p_flags_sql <> '' THEN
        EXECUTE p_flags_sql INTO flags USING p_member_id;
    END IF;

    SELECT p.id, p.member_id INTO v_existing_id, v_existing_member
      FROM rewards_purchase p WHERE p.partner_id = p_partner_id AND p.order_reference = p_order_reference;
    IF FOUND THEN
        purchase_id := v_existing_id;
        status := CASE WHEN v_existing_member = p_member_id THEN 'existing' ELSE 'conflict' END;
        RETURN;
    END IF;
    IF member_status <> 'active' THEN
        status := 'inactive';
        RETURN;
    END IF;
    v_variant := p_variants -> coalesce(tier_id::text, '');
    IF v_variant IS NULL OR EXISTS (SELECT 1 FROM unnest(p_python_flags) AS f(n) WHERE flags[f.n]) THEN
        status := 'fallback';
        RETURN;
    END IF;

    v_total := (v_variant ->> 0)::bigint;
    v_pending := CASE WHEN p_hold THEN v_total ELSE 0 END;
    v_earned := v_total - v_pending;
    INSERT INTO rewards_purchase (member_id, partner_id, store_id, channel, order_reference, amount, currency,
                                  occurred_at, points_earned, points_reversed, points_pending, available_at,
                                  returned_amount, created_at)
    VALUES (p_member_id, p_partner_id, p_store_id, p_channel, p_order_reference, p_amount, p_currency,
            p_occurred_at, v_total, 0, v_pending, p_available_at, 0, p_now)
    ON CONFLICT ON CONSTRAINT purchase_reference_unique DO NOTHING
    RETURNING id INTO purchase_id;
    IF purchase_id IS NULL THEN  -- another member's purchase with this reference committed meanwhile
        status := 'conflict';
        RETURN;
    END IF;

    -- Ids come from a sequence in insertion order: sorted, they follow the lines' order.
    WITH inserted AS (
        INSERT INTO rewards_purchaseline (purchase_id, sku, category, quantity, amount, points, returned_amount,
                                          points_reversed)
        SELECT purchase_id, l.sku, l.category, l.quantity, l.amount, (v_variant -> 1 ->> (l.n - 1)::int)::bigint,
               0, 0
          FROM unnest(p_skus, p_categories, p_quantities, p_amounts) WITH ORDINALITY AS l(sku, category, quantity,
                                                                                          amount, n)
         ORDER BY l.n
        RETURNING id)
    SELECT array_agg(id ORDER BY id) INTO line_ids FROM inserted;

    WITH inserted AS (
        INSERT INTO rewards_purchasepoints (purchase_id, kind, rule_id, tier_id, points, label_de, label_en)
        SELECT purchase_id, c.value ->> 0, (c.value ->> 1)::bigint, (c.value ->> 2)::bigint,
               (c.value ->> 3)::bigint, '', ''
          FROM jsonb_array_elements(v_variant -> 2) WITH ORDINALITY AS c(value, n)
         ORDER BY c.n
        RETURNING id)
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO breakdown_ids FROM inserted;

    IF NOT v_related THEN  -- the member's first purchase with this partner (at this store)
        INSERT INTO members_partnerrelation (member_id, partner_id, store_id, via, created_at)
        VALUES (p_member_id, p_partner_id, p_store_id, 'purchase', p_now) ON CONFLICT DO NOTHING;
    END IF;
    IF v_earned > 0 THEN
        INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, reason_code,
                                        reason_params, purchase_id, source, reference, created_by_id)
        VALUES (p_member_id, 'earn', v_earned, p_entry_at, p_expires_at, p_reason, p_reason_code, p_reason_params,
                purchase_id, '', '', NULL);
    END IF;
    -- One UPDATE of the member row: every update writes a new version of it.
    UPDATE members_member
       SET points_balance = points_balance + v_earned,
           lifetime_spend = lifetime_spend + p_eur,
           spend_12m = spend_12m + CASE WHEN p_recent THEN p_eur ELSE 0 END,
           purchases_12m = purchases_12m + CASE WHEN p_recent THEN 1 ELSE 0 END,
           last_purchase_at = greatest(last_purchase_at, p_occurred_at),
           points_pending = points_pending + v_pending
     WHERE id = p_member_id
    RETURNING points_balance INTO balance;
    IF v_earned > 0 AND coalesce(tier_id, 0) = ANY (p_evaluate_tiers) THEN
        SELECT QUALIFYING_POINTS INTO qualifying FROM members_member m WHERE m.id = p_member_id;
    END IF;
    status := 'created';
END
$earn$;
""".replace("QUALIFYING_POINTS", QUALIFYING_POINTS_SQL % {"since": "p_since", "at": "p_until"})

DROP_EARN_FUNCTION_SQL = "DROP FUNCTION IF EXISTS rewards_purchase_earn"
