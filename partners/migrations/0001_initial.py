"""Partner and Store (from rewards) and the partner API's models (from loyalty_site) move here.

State only: the tables stay where they are and keep their names (each model's `db_table`), so
an existing database changes nothing. A fresh database gets the tables from rewards' and
loyalty_site's migrations, which this one follows. Then the other apps point their foreign keys
here (members 0018, feedback 0003, rewards 0011), loyalty_site 0003 and rewards 0011 drop the
old models from the state, and 0002 moves the content types (permissions, admin log, audit log).
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import partners.models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('rewards', '0010_ledger_refuses_truncate'),
        ('loyalty_site', '0002_partner_scope'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Partner',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=120, unique=True, verbose_name='name')),
                        ('active', models.BooleanField(default=True, verbose_name='active')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'verbose_name': 'partner',
                        'verbose_name_plural': 'partners',
                        'db_table': 'rewards_partner',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='Store',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('code', models.CharField(max_length=40, verbose_name='store code')),
                        ('name', models.CharField(max_length=120, verbose_name='name')),
                        ('city', models.CharField(blank=True, max_length=100, verbose_name='city')),
                        ('country', models.CharField(default='DE', max_length=2, verbose_name='country')),
                        ('partner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='stores', to='partners.partner')),
                    ],
                    options={
                        'verbose_name': 'store',
                        'verbose_name_plural': 'stores',
                        'db_table': 'rewards_store',
                        'ordering': ['name'],
                        'constraints': [models.UniqueConstraint(fields=('partner', 'code'), name='store_code_unique_per_partner')],
                    },
                ),
                migrations.CreateModel(
                    name='PartnerAPIKey',
                    fields=[
                        ('id', models.CharField(editable=False, max_length=150, primary_key=True, serialize=False, unique=True)),
                        ('prefix', models.CharField(editable=False, max_length=8, unique=True)),
                        ('hashed_key', models.CharField(editable=False, max_length=150)),
                        ('created', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('name', models.CharField(default=None, help_text='A free-form name for the API key. Need not be unique. 50 characters max.', max_length=50)),
                        ('revoked', models.BooleanField(blank=True, default=False, help_text='If the API key is revoked, clients cannot use it anymore. (This cannot be undone.)')),
                        ('expiry_date', models.DateTimeField(blank=True, help_text='Once API key expires, clients cannot use it anymore.', null=True, verbose_name='Expires')),
                        ('scopes', models.JSONField(blank=True, default=list, help_text='What the key may do, e.g. members:read, purchases:write.', verbose_name='scopes')),
                        ('partner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_keys', to='partners.partner', verbose_name='partner')),
                        ('stores', models.ManyToManyField(blank=True, help_text="Empty: all of the partner's stores.", related_name='+', to='partners.store', verbose_name='restricted to stores')),
                    ],
                    options={
                        'verbose_name': 'partner API key',
                        'verbose_name_plural': 'partner API keys',
                        'db_table': 'loyalty_site_partnerapikey',
                        'ordering': ('-created',),
                        'abstract': False,
                    },
                ),
                migrations.CreateModel(
                    name='WebhookSubscription',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500, verbose_name='URL')),
                        ('events', models.JSONField(default=list, verbose_name='events')),
                        ('secret', models.CharField(default=partners.models.generate_webhook_secret, editable=False, max_length=80, verbose_name='signing secret')),
                        ('active', models.BooleanField(default=True, verbose_name='active')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('partner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_subscriptions', to='partners.partner', verbose_name='partner')),
                    ],
                    options={
                        'verbose_name': 'webhook subscription',
                        'verbose_name_plural': 'webhook subscriptions',
                        'db_table': 'loyalty_site_webhooksubscription',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['partner', 'active'], name='webhook_partner_active')],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event', models.CharField(choices=[('member.enrolled', 'member enrolled'), ('points.earned', 'points earned'), ('tier.changed', 'tier changed'), ('voucher.issued', 'voucher issued'), ('voucher.used', 'voucher used')], max_length=40, verbose_name='event')),
                        ('event_id', models.UUIDField(default=uuid.uuid4, editable=False, help_text='The same for every attempt: receivers use it to ignore repeats.', verbose_name='event id')),
                        ('payload', models.JSONField(verbose_name='payload')),
                        ('status', models.CharField(choices=[('pending', 'pending'), ('delivered', 'delivered'), ('failed', 'failed')], default='pending', max_length=10, verbose_name='status')),
                        ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='attempts')),
                        ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='last HTTP status')),
                        ('last_error', models.TextField(blank=True, verbose_name='last error')),
                        ('last_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='last attempt')),
                        ('delivered_at', models.DateTimeField(blank=True, null=True, verbose_name='delivered at')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                        ('subscription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='partners.webhooksubscription', verbose_name='subscription')),
                    ],
                    options={
                        'verbose_name': 'webhook delivery',
                        'verbose_name_plural': 'webhook deliveries',
                        'db_table': 'loyalty_site_webhookdelivery',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['subscription', '-id'], name='webhook_delivery_history')],
                    },
                ),
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=255, verbose_name='idempotency key')),
                        ('fingerprint', models.CharField(max_length=64, verbose_name='request fingerprint (SHA-256)')),
                        ('method', models.CharField(max_length=10)),
                        ('path', models.CharField(max_length=255)),
                        ('response_status', models.PositiveSmallIntegerField(verbose_name='response status')),
                        ('response_body', models.TextField(verbose_name='response body')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='created at')),
                        ('partner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='partners.partner')),
                    ],
                    options={
                        'verbose_name': 'idempotency record',
                        'verbose_name_plural': 'idempotency records',
                        'db_table': 'loyalty_site_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('partner', 'key'), name='idempotency_key_unique_per_partner')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
