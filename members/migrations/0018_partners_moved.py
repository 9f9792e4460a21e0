"""Partner and Store moved to the partners app (same tables): the foreign keys point there. State only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0017_importjob_attempts'),
        ('partners', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='partnerrelation',
                    name='partner',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='partners.partner', verbose_name='partner'),
                ),
                migrations.AlterField(
                    model_name='partnerrelation',
                    name='store',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='partners.store', verbose_name='store'),
                ),
                migrations.AlterField(
                    model_name='privacyrequest',
                    name='partner',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.partner', verbose_name='partner'),
                ),
            ],
            database_operations=[],
        ),
    ]
