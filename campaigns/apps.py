from django.apps import AppConfig
from django.db.models.signals import pre_delete
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("campaigns")

    def ready(self):
        # Receivers are connected here, in every process, never as a side effect of an import. The
        # project's modules are imported here because models cannot be imported before the apps load.
        from campaigns import optout
        from campaigns.models import Consent, Contact

        # Consent and opt-out history must be kept 3 years: refuse deletes that would lose it.
        pre_delete.connect(optout.refuse_early_deletion, sender=Contact, dispatch_uid="consent_retention_contact")
        pre_delete.connect(optout.refuse_consent_deletion, sender=Consent, dispatch_uid="consent_retention_consent")
