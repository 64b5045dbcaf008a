"""The audit table refuses UPDATE and DELETE: a trigger on PostgreSQL and on SQLite."""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION console_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'console_auditevent is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS console_auditevent_append_only ON console_auditevent;
CREATE TRIGGER console_auditevent_append_only BEFORE UPDATE OR DELETE ON console_auditevent
    FOR EACH ROW EXECUTE FUNCTION console_auditevent_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS console_auditevent_append_only ON console_auditevent;
DROP FUNCTION IF EXISTS console_auditevent_append_only();
"""
SQLITE_UP = [
    "CREATE TRIGGER IF NOT EXISTS console_auditevent_no_update BEFORE UPDATE ON console_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'console_auditevent is append-only: UPDATE refused'); END;",
    "CREATE TRIGGER IF NOT EXISTS console_auditevent_no_delete BEFORE DELETE ON console_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'console_auditevent is append-only: DELETE refused'); END;",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS console_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS console_auditevent_no_delete;",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("console", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
