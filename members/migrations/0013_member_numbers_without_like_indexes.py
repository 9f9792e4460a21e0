"""Customer and card numbers: unique through named constraints instead of `unique=True`, which on
PostgreSQL also made a varchar_pattern_ops "_like" index per column. Nothing searches these numbers
with LIKE (look-ups are exact), and every inserted member was written into both.

The unique constraints are kept and renamed, and the "_like" indexes dropped: no new index is
built over a million members while the table is locked.
"""

from django.db import migrations, models

import members.models

NUMBERS = ("customer_number", "card_number")
NAMES = {"customer_number": "member_customer_number_unique", "card_number": "member_card_number_unique"}
NEW_FIELDS = {
    "customer_number": models.CharField(default=members.models.generate_customer_number, max_length=40,
                                        verbose_name="customer number"),
    "card_number": models.CharField(default=members.models.generate_card_number, max_length=32,
                                    verbose_name="card number"),
}


def forward(apps, schema_editor):
    model = apps.get_model("members", "Member")
    quote = schema_editor.quote_name
    table = model._meta.db_table
    for name in NUMBERS:
        (constraint,) = schema_editor._constraint_names(model, [name], unique=True, primary_key=False)
        schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(constraint)} TO "
                              f"{quote(NAMES[name])}")
        like = schema_editor._create_index_name(table, [name], suffix="_like")
        schema_editor.execute(f"DROP INDEX IF EXISTS {quote(like)}")


def backward(apps, schema_editor):
    model = apps.get_model("members", "Member")
    quote = schema_editor.quote_name
    table = model._meta.db_table
    for name in NUMBERS:
        schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(NAMES[name])} TO "
                              f"{quote(f'{table}_{name}_key')}")
        schema_editor.execute(schema_editor._create_like_index_sql(model, model._meta.get_field(name)))


class Migration(migrations.Migration):
    dependencies = [("members", "0012_input_bounds")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward)],
            state_operations=[
                migrations.AlterField(model_name="member", name="card_number", field=NEW_FIELDS["card_number"]),
                migrations.AlterField(model_name="member", name="customer_number",
                                      field=NEW_FIELDS["customer_number"]),
                migrations.AddConstraint(model_name="member", constraint=models.UniqueConstraint(
                    fields=("customer_number",), name=NAMES["customer_number"])),
                migrations.AddConstraint(model_name="member", constraint=models.UniqueConstraint(
                    fields=("card_number",), name=NAMES["card_number"])),
            ],
        ),
    ]
