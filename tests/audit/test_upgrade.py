"""The audit log moved from console/ to audit/ without touching its table, rows or triggers.

A database migrated before the move recorded the audit migrations under the app label "console";
the audit app keeps that label, so such a database has nothing to apply and keeps its rows and its
append-only triggers.
"""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from audit.models import AuditEvent
from audit.services import audit_record

AUDIT_MIGRATIONS = [("console", "0001_initial"), ("console", "0002_audit_append_only")]


def test_the_audit_model_keeps_its_label_table_and_migration_names():
    assert AuditEvent._meta.app_label == "console"
    assert AuditEvent._meta.db_table == "console_auditevent"
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    assert [key for key in graph.leaf_nodes() if key[0] == "console"] == [AUDIT_MIGRATIONS[-1]]
    assert graph.forwards_plan(AUDIT_MIGRATIONS[-1])[-2:] == AUDIT_MIGRATIONS


@pytest.mark.django_db
def test_a_database_migrated_before_the_move_has_nothing_to_apply():
    applied = MigrationRecorder(connection).applied_migrations()
    assert all(key in applied for key in AUDIT_MIGRATIONS)  # recorded as the old code recorded them
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_a_remigration_survive_and_stay_append_only():
    executor = MigrationExecutor(connection)
    try:
        # The table without its triggers (and, unapplied with it, every migration of another app
        # that depends on the audit log, such as the one that reads erasures from it)…
        executor.migrate([("console", "0001_initial")])
        event = audit_record("settings.quiet_hours", actor_label="before")
    finally:
        # …and the upgrade puts them back, with every app migrated to its latest again: the rest of
        # the suite runs on this database.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    assert AuditEvent.objects.filter(pk=event.pk, actor_label="before").exists()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="changed")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
