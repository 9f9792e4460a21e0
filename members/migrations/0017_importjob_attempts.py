from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("members", "0016_partner_scope"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="attempts",
            field=models.PositiveSmallIntegerField(
                default=0, verbose_name="attempts",
                help_text="How often the current step (dry run, or import after confirmation) was started. A step "
                          "that was started twice and never finished is not tried again."),
        ),
    ]
