from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"

    def ready(self):
        from . import audit  # noqa: F401 - connects the sign-in signals to the audit log
