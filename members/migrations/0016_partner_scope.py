"""The partner API's member scope: an opaque API id per member, the partner relations that
decide which members a partner sees, and short-lived member codes (presence from the portal).

- `public_id`: added empty, filled for every existing member, then made required and unique.
  One UPDATE with gen_random_uuid() (built into PostgreSQL since 13) fills a million members
  in seconds.
- `PartnerRelation`: filled from the purchases (one row per member, partner and store, dated by
  the first purchase). Enrolments through the API were not recorded before: those members are
  related again by their next purchase, or present by their card.
"""

import uuid

import django.db.models.deletion
import django.db.models.functions.comparison
import django.utils.timezone
from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET public_id = gen_random_uuid() WHERE public_id IS NULL")


def relate_buyers(apps, schema_editor):
    # GROUP BY gives one row per (member, partner, store), so no conflicts.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO members_partnerrelation (member_id, partner_id, store_id, via, created_at)
            SELECT member_id, partner_id, store_id, 'purchase', MIN(created_at)
            FROM rewards_purchase GROUP BY member_id, partner_id, store_id
        """)


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0015_privacy_requests'),
        ('rewards', '0008_input_bounds'),
    ]

    operations = [
        migrations.AddField(
            model_name='member',
            name='public_id',
            field=models.UUIDField(null=True, editable=False, verbose_name='API id'),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name='member',
            name='public_id',
            field=models.UUIDField(default=uuid.uuid4, editable=False, verbose_name='API id'),
        ),
        migrations.AddConstraint(
            model_name='member',
            constraint=models.UniqueConstraint(fields=('public_id',), name='member_public_id_unique'),
        ),
        migrations.CreateModel(
            name='PartnerRelation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('via', models.CharField(choices=[('enrolment', 'enrolment'), ('purchase', 'purchase')], max_length=10,
                                         verbose_name='how')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='since')),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                             related_name='partner_relations', to='members.member',
                                             verbose_name='member')),
                ('partner', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                              related_name='+', to='rewards.partner', verbose_name='partner')),
                ('store', models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                            to='rewards.store', verbose_name='store')),
            ],
            options={
                'verbose_name': 'partner relation',
                'verbose_name_plural': 'partner relations',
                'constraints': [models.UniqueConstraint(
                    models.F('member'), models.F('partner'), django.db.models.functions.comparison.Coalesce('store', 0),
                    name='relation_unique')],
            },
        ),
        migrations.RunPython(relate_buyers, migrations.RunPython.noop, elidable=True),
        migrations.CreateModel(
            name='MemberCode',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('purpose', models.CharField(choices=[('presence', 'presence at a partner')], default='presence',
                                             max_length=10, verbose_name='purpose')),
                ('code_hash', models.CharField(editable=False, max_length=64)),
                ('expires_at', models.DateTimeField(verbose_name='valid until')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                ('member', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='codes',
                                             to='members.member', verbose_name='member')),
            ],
            options={
                'verbose_name': 'member code',
                'verbose_name_plural': 'member codes',
                'constraints': [models.UniqueConstraint(fields=('code_hash',), name='member_code_hash_unique')],
            },
        ),
    ]
