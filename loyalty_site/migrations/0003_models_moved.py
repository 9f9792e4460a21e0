"""The partner API's models moved to the partners app, PartnerRedemption to rewards; the tables keep
their names. State only: loyalty_site has no models after this (its migrations stay as history)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty_site', '0002_partner_scope'),
        ('partners', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='partnerredemption',
                    name='partner',
                ),
                migrations.RemoveField(
                    model_name='partnerredemption',
                    name='redemption',
                ),
                migrations.RemoveField(
                    model_name='partnerredemption',
                    name='store',
                ),
                migrations.DeleteModel(
                    name='PartnerRedemption',
                ),
                migrations.DeleteModel(
                    name='WebhookDelivery',
                ),
                migrations.DeleteModel(
                    name='WebhookSubscription',
                ),
                migrations.DeleteModel(
                    name='IdempotencyRecord',
                ),
                migrations.DeleteModel(
                    name='PartnerAPIKey',
                ),
            ],
            database_operations=[],
        ),
    ]
