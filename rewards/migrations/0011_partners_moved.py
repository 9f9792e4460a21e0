"""Partner and Store moved to the partners app, PartnerRedemption (a voucher fact) came here from
loyalty_site; every table keeps its name. The foreign keys point to partners, and the old models
leave the state once nothing else points at them (members 0018, feedback 0003, loyalty_site 0003).
State only."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('feedback', '0003_partners_moved'),
        ('loyalty_site', '0003_models_moved'),
        ('members', '0018_partners_moved'),
        ('partners', '0001_initial'),
        ('rewards', '0010_ledger_refuses_truncate'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='purchase',
                    name='partner',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='partners.partner'),
                ),
                migrations.AlterField(
                    model_name='redemption',
                    name='used_by_partner',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.partner', verbose_name='used by partner'),
                ),
                migrations.AlterField(
                    model_name='purchase',
                    name='store',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='partners.store'),
                ),
                migrations.AlterField(
                    model_name='redemption',
                    name='used_at_store',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.store', verbose_name='used in store'),
                ),
                migrations.AlterField(
                    model_name='storedaytotal',
                    name='store',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='day_totals', to='partners.store', verbose_name='store'),
                ),
                migrations.AlterField(
                    model_name='earningrule',
                    name='stores',
                    field=models.ManyToManyField(blank=True, to='partners.store', verbose_name='stores'),
                ),
                migrations.CreateModel(
                    name='PartnerRedemption',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('partner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='partners.partner')),
                        ('redemption', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='issued_by', to='rewards.redemption')),
                        ('store', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.store')),
                    ],
                    options={
                        'verbose_name': 'voucher issued through the API',
                        'verbose_name_plural': 'vouchers issued through the API',
                        'db_table': 'loyalty_site_partnerredemption',
                        'indexes': [models.Index(fields=['partner', '-redemption'], name='partner_redemption_list')],
                    },
                ),
                migrations.DeleteModel(
                    name='Store',
                ),
                migrations.DeleteModel(
                    name='Partner',
                ),
            ],
            database_operations=[],
        ),
    ]
