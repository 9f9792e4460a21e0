"""The purchase earn calls the buyer flags function (installed after every migrate by
rewards.ledger.buyer_flags_install) instead of planning the flags' SELECT for every purchase.

The SQL is copied here as it was when this migration was written (see 0020)."""

from importlib import import_module

from django.db import migrations

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
        SELECT ((
    SELECT coalesce(sum(e.points), 0) FROM rewards_pointentry e
    WHERE e.member_id IN (SELECT d.id FROM members_member d WHERE d.id = m.id OR d.merged_into_id = m.id)
      AND e.kind IN ('earn', 'bonus', 'reversal') AND e.created_at >= p_since AND e.created_at <= p_until
) - (
    SELECT coalesce(sum(r.shortfall_points), 0) FROM rewards_purchasereturn r
    JOIN rewards_purchase p ON p.id = r.purchase_id
    WHERE p.member_id = m.id AND r.shortfall_points > 0 AND r.created_at >= p_since AND r.created_at <= p_until
)) INTO qualifying FROM members_member m WHERE m.id = p_member_id;
    END IF;
    status := 'created';
END
$earn$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("rewards", "0020_purchase_earn_function"),
    ]

    operations = [
        migrations.RunSQL(EARN_FUNCTION_SQL, reverse_sql=import_module(
            "rewards.migrations.0020_purchase_earn_function").EARN_FUNCTION_SQL),
    ]
