from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("messaging")

    def ready(self):
        from . import inbox  # noqa: F401 - the inbound_received receiver and the inbox tasks
        from .outbound_webhooks import connect_receivers

        connect_receivers()  # status, inbound and opt-out events → organizations' webhook endpoints
