"""ImportJob and ExportLog moved to the transfers app (transfers 0001): state only, the tables
stay (they keep their names through `db_table`)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("members", "0018_partners_moved"),
        ("transfers", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ImportJob"),
                migrations.DeleteModel(name="ExportLog"),
            ],
        ),
    ]
