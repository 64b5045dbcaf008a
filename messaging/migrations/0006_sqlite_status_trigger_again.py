"""Re-create the forward-only status trigger on SQLite (the embedded default).

On SQLite, Django applies most ALTERs to messaging_delivery (0004, 0005) by rebuilding the table,
which silently drops its triggers, so the trigger of 0002 was gone. PostgreSQL keeps triggers across
ALTER TABLE and needs nothing here. A later migration that rebuilds messaging_delivery on SQLite
must re-create it the same way; tests/messaging/test_models.py checks it after all migrations.
"""

from django.db import migrations

SQLITE_UP = """
CREATE TRIGGER IF NOT EXISTS messaging_delivery_status_forward_only
BEFORE UPDATE OF status ON messaging_delivery
WHEN NEW.status < OLD.status
BEGIN
    SELECT RAISE(ABORT, 'delivery status may not move back');
END;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_single_messages")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
