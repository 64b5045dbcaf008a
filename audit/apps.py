from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The append-only audit log. Its label stays ``console``, where its table, migrations and
    append-only triggers have lived since the first release (the rows and triggers are kept as
    they are; see docs/architecture.md)."""

    name = "audit"
    label = "console"
    verbose_name = "audit"

    def ready(self):
        from audit import receivers

        receivers.connect()
