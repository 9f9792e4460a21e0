"""ImportJob and ExportLog came from members (members 0019 removes them there): their tables
stay as they are, so this only tells Django's migration state where the models live now.

State only, so it needs no more of members than the migration that created the tables: other
apps' latest migrations must stay reachable with members at an older migration (see
tests/partners/test_api_partner_scope.py, which migrates members back to 0015). A later migration of
transfers that touches the tables must depend on ("members", "0019_move_imports_to_transfers")."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import transfers.models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("members", "0007_exportlog_importjob"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ExportLog',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('members', 'members'), ('ledger', 'ledger'), ('purchases', 'purchases'), ('redemptions', 'vouchers'), ('rewards', 'rewards'), ('answers', 'survey answers')], max_length=12, verbose_name='what')),
                        ('file_format', models.CharField(max_length=5, verbose_name='format')),
                        ('row_count', models.PositiveIntegerField(default=0, verbose_name='rows')),
                        ('filters', models.TextField(blank=True, verbose_name='selection')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='when')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='exported by')),
                    ],
                    options={
                        'db_table': 'members_exportlog',
                        'verbose_name': 'export',
                        'verbose_name_plural': 'exports',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='ImportJob',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('members', 'members'), ('purchases', 'historical purchases'), ('rewards', 'rewards')], max_length=12, verbose_name='kind')),
                        ('status', models.CharField(choices=[('pending', 'waiting for the dry run'), ('analysing', 'dry run running'), ('analysed', 'dry run done: waiting for confirmation'), ('importing', 'importing'), ('done', 'imported'), ('failed', 'failed: nothing was written'), ('discarded', 'discarded')], default='pending', max_length=12, verbose_name='status')),
                        ('file', models.FileField(blank=True, max_length=255, upload_to=transfers.models.import_upload_path, verbose_name='file')),
                        ('file_name', models.CharField(max_length=255, verbose_name='file name')),
                        ('file_size', models.BigIntegerField(default=0, verbose_name='file size (bytes)')),
                        ('options', models.JSONField(blank=True, default=dict, help_text='Format, encoding, delimiter, partner and what to do with invalid rows.', verbose_name='options')),
                        ('encoding', models.CharField(blank=True, max_length=20, verbose_name='encoding')),
                        ('delimiter', models.CharField(blank=True, max_length=5, verbose_name='delimiter')),
                        ('language', models.CharField(default='de', max_length=8, verbose_name='report language')),
                        ('rows_total', models.PositiveIntegerField(blank=True, null=True, verbose_name='rows')),
                        ('rows_processed', models.PositiveIntegerField(default=0, verbose_name='rows processed')),
                        ('progress', models.PositiveSmallIntegerField(default=0, verbose_name='progress (%)')),
                        ('count_new', models.PositiveIntegerField(default=0, verbose_name='new')),
                        ('count_updated', models.PositiveIntegerField(default=0, verbose_name='updated')),
                        ('count_unchanged', models.PositiveIntegerField(default=0, verbose_name='unchanged')),
                        ('count_skipped', models.PositiveIntegerField(default=0, verbose_name='skipped')),
                        ('count_invalid', models.PositiveIntegerField(default=0, verbose_name='invalid')),
                        ('errors', models.JSONField(blank=True, default=list, help_text='Line, column and message of each invalid row (the first 1,000).', verbose_name='invalid rows')),
                        ('warnings', models.JSONField(blank=True, default=list, verbose_name='notes')),
                        ('dry_run', models.JSONField(blank=True, default=dict, verbose_name='dry run')),
                        ('message', models.TextField(blank=True, verbose_name='message')),
                        ('attempts', models.PositiveSmallIntegerField(default=0, help_text='How often the current step (dry run, or import after confirmation) was started. A step that was started twice and never finished is not tried again.', verbose_name='attempts')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='uploaded at')),
                        ('confirmed_at', models.DateTimeField(blank=True, null=True, verbose_name='confirmed at')),
                        ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started at')),
                        ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                        ('confirmed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='confirmed by')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='uploaded by')),
                    ],
                    options={
                        'db_table': 'members_importjob',
                        'verbose_name': 'import',
                        'verbose_name_plural': 'imports',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
            ],
        ),
    ]
