from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("messaging")

    def ready(self):
        from messaging import inbox  # noqa: F401 - the inbound_received receiver and the inbox tasks
        from messaging.outbound_webhooks import connect_receivers

        connect_receivers()  # status, inbound and opt-out events → organizations' webhook endpoints
