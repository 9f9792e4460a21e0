"""Storage settings for the member row, which every earn, redemption and expiry updates.

- fillfactor 85: each page keeps room, so a balance update stays on its page (a HOT update: no
  index touched). Until now only seed_bench set it, so the bench measured a table production did
  not have. It applies to pages written from now on; existing pages get it when the table is
  rewritten (VACUUM FULL, pg_repack).
- autovacuum after 1 % of the rows changed or added (PostgreSQL's default: 20 %). An update
  clears its page's all-visible bit, and an index-only scan (deep console pages, counts over the
  member indexes) then reads the table for every row on such a page: at 1,000,000 members the
  default let 200,000 updates pile up first, and page 5,000 of the member list took 190 ms instead
  of 45 ms. A vacuum skips the pages still all-visible, so the more frequent ones stay short.
"""

from django.db import migrations

SETTINGS = ("fillfactor = 85, autovacuum_vacuum_scale_factor = 0.01, "
            "autovacuum_vacuum_insert_scale_factor = 0.01")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0024_leaner_history_and_consent_indexes"),
    ]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE members_member SET ({SETTINGS})",
            reverse_sql="ALTER TABLE members_member RESET (fillfactor, autovacuum_vacuum_scale_factor, "
                        "autovacuum_vacuum_insert_scale_factor)",
        ),
    ]
