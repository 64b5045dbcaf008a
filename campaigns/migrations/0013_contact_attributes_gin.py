"""A GIN index on contacts' attributes for segments' field equality (``attributes @> {...}``, see
messaging.segments), on PostgreSQL only: the embedded SQLite default has no such index type."""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS contact_attributes_gin ON campaigns_contact USING gin (attributes jsonb_path_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_attributes_gin")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0012_campaign_segments")]

    operations = [migrations.RunPython(create_index, drop_index)]
