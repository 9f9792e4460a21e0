"""The per-member monthly purchase rollup (rewards.MemberMonth), kept by PostgreSQL triggers.

Statement-level triggers with transition tables: one INSERT … ON CONFLICT per statement on
rewards_purchase, whatever its size, so a COPY import or a set-based earn costs one grouped
upsert rather than one per row. Each trigger turns the changed rows into deltas per (member,
month, currency): +1 purchase and +net for a new row, -1 and -net for an old one; an UPDATE
counts only rows whose member, time, amount, returned amount or currency changed (returns,
member merges), so the many updates of other columns (pending points) write nothing. Rows
that reach zero purchases (all moved away by a merge, or deleted) are removed.

Months are UTC calendar months. The backfill groups the existing purchases the same way.
seed_bench loads with triggers off (session_replication_role = replica) and fills the table
itself.
"""

import django.db.models.deletion
from django.db import migrations, models

# The delta of a set of rows: `sign` is 1 for rows that arrive, -1 for rows that leave.
DELTA_COLUMNS = """
    member_id, (date_trunc('month', occurred_at AT TIME ZONE 'UTC'))::date AS month, currency,
    {sign} AS purchases, {sign} * (amount - returned_amount) AS net_amount
"""

APPLY = """
    WITH delta AS (
        SELECT member_id, month, currency, sum(purchases)::integer AS purchases, sum(net_amount) AS net_amount
        FROM ({rows}) AS changed
        GROUP BY member_id, month, currency
        HAVING sum(purchases) <> 0 OR sum(net_amount) <> 0
    ), written AS (
        INSERT INTO rewards_membermonth AS mm (member_id, month, currency, purchases, net_amount)
        SELECT member_id, month, currency, purchases, net_amount FROM delta
        ORDER BY member_id, month, currency  -- one lock order for concurrent writers
        ON CONFLICT (member_id, month, currency) DO UPDATE
            SET purchases = mm.purchases + excluded.purchases, net_amount = mm.net_amount + excluded.net_amount
        RETURNING mm.id, mm.purchases
    )
    SELECT array_agg(id) INTO emptied FROM written WHERE purchases = 0;
    IF emptied IS NOT NULL THEN
        DELETE FROM rewards_membermonth WHERE id = ANY(emptied);
    END IF;
    RETURN NULL;
"""


def function(name: str, rows: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
    DECLARE
        emptied bigint[];
    BEGIN
        {APPLY.format(rows=rows)}
    END;
    $$ LANGUAGE plpgsql
    """


ARRIVED = f"SELECT {DELTA_COLUMNS.format(sign=1)} FROM new_purchases"  # noqa: S608 - constants only
LEFT = f"SELECT {DELTA_COLUMNS.format(sign=-1)} FROM old_purchases"  # noqa: S608 - constants only
# Only rows whose rollup columns changed: an UPDATE of other columns writes nothing.
CHANGED = """
    SELECT n.id FROM new_purchases n JOIN old_purchases o ON o.id = n.id
    WHERE (n.member_id, n.occurred_at, n.amount, n.returned_amount, n.currency)
          IS DISTINCT FROM (o.member_id, o.occurred_at, o.amount, o.returned_amount, o.currency)
"""
UPDATED = (f"{ARRIVED} WHERE id IN ({CHANGED}) UNION ALL {LEFT} WHERE id IN ({CHANGED})")

FORWARD = [
    function("rewards_member_month_insert", ARRIVED),
    function("rewards_member_month_update", UPDATED),
    function("rewards_member_month_delete", LEFT),
    """
    CREATE TRIGGER rewards_member_month_insert AFTER INSERT ON rewards_purchase
    REFERENCING NEW TABLE AS new_purchases
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_month_insert()
    """,
    """
    CREATE TRIGGER rewards_member_month_update AFTER UPDATE ON rewards_purchase
    REFERENCING OLD TABLE AS old_purchases NEW TABLE AS new_purchases
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_month_update()
    """,
    """
    CREATE TRIGGER rewards_member_month_delete AFTER DELETE ON rewards_purchase
    REFERENCING OLD TABLE AS old_purchases
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_month_delete()
    """,
    """
    INSERT INTO rewards_membermonth (member_id, month, currency, purchases, net_amount)
    SELECT member_id, (date_trunc('month', occurred_at AT TIME ZONE 'UTC'))::date, currency,
           count(*), sum(amount - returned_amount)
    FROM rewards_purchase GROUP BY 1, 2, 3 ORDER BY 2, 1, 3
    """,
    "ANALYZE rewards_membermonth",
]
BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS rewards_member_month_{event} ON rewards_purchase"
      for event in ("insert", "update", "delete")),
    *(f"DROP FUNCTION IF EXISTS rewards_member_month_{event}()" for event in ("insert", "update", "delete")),
    "DELETE FROM rewards_membermonth",
]


# --- The categories a member bought, with the latest moment (rewards.MemberCategory) ---------------

CATEGORY_RECOMPUTE = """
    CREATE OR REPLACE FUNCTION rewards_member_category_recompute(members bigint[]) RETURNS void AS $$
    BEGIN
        DELETE FROM rewards_membercategory WHERE member_id = ANY(members);
        INSERT INTO rewards_membercategory (member_id, category, last_bought_at)
        SELECT p.member_id, upper(l.category), max(p.occurred_at)
        FROM rewards_purchase p JOIN rewards_purchaseline l ON l.purchase_id = p.id
        WHERE p.member_id = ANY(members) AND l.category <> ''
        GROUP BY 1, 2 ORDER BY 1, 2;
    END;
    $$ LANGUAGE plpgsql
"""


def category_function(name: str, members: str) -> str:
    """A trigger function that recomputes the members listed by the query `members`."""
    return f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
    DECLARE
        affected bigint[];
    BEGIN
        SELECT array_agg(DISTINCT member_id) INTO affected FROM ({members}) AS concerned;
        IF affected IS NOT NULL THEN
            PERFORM rewards_member_category_recompute(affected);
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """  # noqa: S608 - constants of this module


# New lines only raise the moment: a COPY of many lines is one grouped upsert.
CATEGORY_LINES_INSERT = """
    CREATE OR REPLACE FUNCTION rewards_member_category_lines_insert() RETURNS trigger AS $$
    BEGIN
        INSERT INTO rewards_membercategory AS mc (member_id, category, last_bought_at)
        SELECT p.member_id, upper(l.category), max(p.occurred_at)
        FROM new_lines l JOIN rewards_purchase p ON p.id = l.purchase_id
        WHERE l.category <> ''
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (member_id, category) DO UPDATE
            SET last_bought_at = greatest(mc.last_bought_at, excluded.last_bought_at);
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
"""
CHANGED_LINES = """
    SELECT n.purchase_id AS new_purchase, o.purchase_id AS old_purchase
    FROM new_lines n JOIN old_lines o ON o.id = n.id
    WHERE (n.purchase_id, n.category) IS DISTINCT FROM (o.purchase_id, o.category)
"""
CATEGORY_LINES_UPDATE = category_function("rewards_member_category_lines_update", f"""
    SELECT p.member_id FROM rewards_purchase p
    WHERE p.id IN (SELECT new_purchase FROM ({CHANGED_LINES}) c UNION SELECT old_purchase FROM ({CHANGED_LINES}) c)
""")  # noqa: S608 - constants of this module
CATEGORY_LINES_DELETE = category_function("rewards_member_category_lines_delete", """
    SELECT p.member_id FROM rewards_purchase p WHERE p.id IN (SELECT purchase_id FROM old_lines)
""")
# A purchase moved to another member (a merge) or in time; deleted purchases lost their lines.
CATEGORY_PURCHASES_UPDATE = category_function("rewards_member_category_purchases_update", """
    SELECT unnest(ARRAY[n.member_id, o.member_id]) AS member_id
    FROM new_purchases n JOIN old_purchases o ON o.id = n.id
    WHERE (n.member_id, n.occurred_at) IS DISTINCT FROM (o.member_id, o.occurred_at)
""")
CATEGORY_PURCHASES_DELETE = category_function("rewards_member_category_purchases_delete", """
    SELECT member_id FROM old_purchases
""")

CATEGORY_FORWARD = [
    CATEGORY_RECOMPUTE, CATEGORY_LINES_INSERT, CATEGORY_LINES_UPDATE, CATEGORY_LINES_DELETE,
    CATEGORY_PURCHASES_UPDATE, CATEGORY_PURCHASES_DELETE,
    """
    CREATE TRIGGER rewards_member_category_lines_insert AFTER INSERT ON rewards_purchaseline
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_category_lines_insert()
    """,
    """
    CREATE TRIGGER rewards_member_category_lines_update AFTER UPDATE ON rewards_purchaseline
    REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_category_lines_update()
    """,
    """
    CREATE TRIGGER rewards_member_category_lines_delete AFTER DELETE ON rewards_purchaseline
    REFERENCING OLD TABLE AS old_lines
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_category_lines_delete()
    """,
    """
    CREATE TRIGGER rewards_member_category_purchases_update AFTER UPDATE ON rewards_purchase
    REFERENCING OLD TABLE AS old_purchases NEW TABLE AS new_purchases
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_category_purchases_update()
    """,
    """
    CREATE TRIGGER rewards_member_category_purchases_delete AFTER DELETE ON rewards_purchase
    REFERENCING OLD TABLE AS old_purchases
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_member_category_purchases_delete()
    """,
    """
    INSERT INTO rewards_membercategory (member_id, category, last_bought_at)
    SELECT p.member_id, upper(l.category), max(p.occurred_at)
    FROM rewards_purchase p JOIN rewards_purchaseline l ON l.purchase_id = p.id
    WHERE l.category <> '' GROUP BY 1, 2 ORDER BY 1, 2
    """,
    "ANALYZE rewards_membercategory",
]
CATEGORY_BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS rewards_member_category_lines_{event} ON rewards_purchaseline"
      for event in ("insert", "update", "delete")),
    *(f"DROP TRIGGER IF EXISTS rewards_member_category_purchases_{event} ON rewards_purchase"
      for event in ("update", "delete")),
    *(f"DROP FUNCTION IF EXISTS rewards_member_category_{name}()"
      for name in ("lines_insert", "lines_update", "lines_delete", "purchases_update", "purchases_delete")),
    "DROP FUNCTION IF EXISTS rewards_member_category_recompute(bigint[])",
    "DELETE FROM rewards_membercategory",
]


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0021_tier_kinds_paid_invitation'),
        ('rewards', '0015_tier_membership'),
    ]

    operations = [
        migrations.CreateModel(
            name='MemberMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField(help_text='The first day of the month (UTC).', verbose_name='month')),
                ('currency', models.CharField(max_length=3, verbose_name='currency')),
                ('purchases', models.IntegerField(verbose_name='purchases')),
                ('net_amount', models.DecimalField(decimal_places=2, max_digits=14, verbose_name='amount net of returns')),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='members.member')),
            ],
            options={
                'verbose_name': 'member month',
                'verbose_name_plural': 'member months',
                'indexes': [models.Index(fields=['month', 'member'], include=('currency', 'purchases', 'net_amount'), name='member_month_by_month')],
                'constraints': [models.UniqueConstraint(fields=('member', 'month', 'currency'), name='member_month_unique')],
            },
        ),
        migrations.CreateModel(
            name='MemberCategory',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('category', models.CharField(max_length=64, verbose_name='category')),
                ('last_bought_at', models.DateTimeField(verbose_name='last bought at')),
            ],
            options={
                'verbose_name': 'member category',
                'verbose_name_plural': 'member categories',
            },
        ),
        migrations.AlterField(
            model_name='purchase',
            name='store',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='partners.store'),
        ),
        migrations.AddIndex(
            model_name='purchase',
            index=models.Index(condition=models.Q(('store__isnull', False)), fields=['store', 'occurred_at'], include=('member',), name='purchase_store_time'),
        ),
        migrations.AddField(
            model_name='membercategory',
            name='member',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='members.member'),
        ),
        migrations.AddIndex(
            model_name='membercategory',
            index=models.Index(fields=['category', 'last_bought_at'], include=('member',), name='member_category_recent'),
        ),
        migrations.AddConstraint(
            model_name='membercategory',
            constraint=models.UniqueConstraint(fields=('member', 'category'), name='member_category_unique'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.RunSQL(CATEGORY_FORWARD, CATEGORY_BACKWARD),
    ]
