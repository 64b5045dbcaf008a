from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _

from campaigns.signals import contact_erased, contact_opted_out
from messaging.signals import conversation_message_received, inbound_received


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("messaging")

    def ready(self):
        # Receivers are connected here, in every process (web, worker, beat), never as a side effect
        # of an import. These modules are imported here, not at the top, because they import models,
        # which cannot be imported before the apps are loaded.
        from accounts.models import GatewayAccount
        from messaging import automation, inbox, outbound_webhooks, privacy, webhook_intake

        # inbound messages → conversations; an opt-out → the person's confirmation
        inbound_received.connect(inbox.on_inbound_received, dispatch_uid="inbox_inbound_received")
        contact_opted_out.connect(inbox.on_contact_opted_out, dispatch_uid="inbox_opt_out_confirmation")
        # a stored inbound message → keyword rules and the away message
        conversation_message_received.connect(automation.on_conversation_message_received,
                                              dispatch_uid="automation_message_received")
        # an erasure → the person's inbox (texts, files, locations) goes too
        contact_erased.connect(privacy.on_contact_erased, dispatch_uid="privacy_contact_erased")
        # a changed gateway account must not be served from the webhook receivers' adapter cache
        post_save.connect(webhook_intake.forget_gateway, sender=GatewayAccount,
                          dispatch_uid="webhooks_forget_gateway_saved")
        post_delete.connect(webhook_intake.forget_gateway, sender=GatewayAccount,
                            dispatch_uid="webhooks_forget_gateway_deleted")
        # status, inbound and opt-out events → organizations' webhook endpoints
        outbound_webhooks.connect_receivers()
