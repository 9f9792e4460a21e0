"""Partner and Store moved to the partners app (same tables): the foreign keys point there. State only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('feedback', '0002_input_bounds'),
        ('partners', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='complaint',
                    name='partner',
                    field=models.ForeignKey(blank=True, help_text='The partner whose API opened it.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.partner', verbose_name='partner'),
                ),
                migrations.AlterField(
                    model_name='complaint',
                    name='store',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.store', verbose_name='store'),
                ),
                migrations.AlterField(
                    model_name='response',
                    name='partner',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.partner', verbose_name='partner'),
                ),
                migrations.AlterField(
                    model_name='response',
                    name='store',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.store', verbose_name='store'),
                ),
            ],
            database_operations=[],
        ),
    ]
