"""A delivery's status only moves forward: the database itself refuses an UPDATE that lowers it."""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION messaging_delivery_status_forward_only() RETURNS trigger AS $$
BEGIN
    IF NEW.status < OLD.status THEN
        RAISE EXCEPTION 'delivery % status may not move back from % to %', OLD.uuid, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER messaging_delivery_status_forward_only
    BEFORE UPDATE OF status ON messaging_delivery
    FOR EACH ROW EXECUTE FUNCTION messaging_delivery_status_forward_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS messaging_delivery_status_forward_only ON messaging_delivery;
DROP FUNCTION IF EXISTS messaging_delivery_status_forward_only();
"""
SQLITE_UP = """
CREATE TRIGGER messaging_delivery_status_forward_only
BEFORE UPDATE OF status ON messaging_delivery
WHEN NEW.status < OLD.status
BEGIN
    SELECT RAISE(ABORT, 'delivery status may not move back');
END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS messaging_delivery_status_forward_only;"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
