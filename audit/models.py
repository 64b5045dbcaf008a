"""The audit log: append-only at the database level.

A trigger refuses every UPDATE and DELETE of ``console_auditevent`` rows (PostgreSQL: a PL/pgSQL
function raising an exception; SQLite: ``RAISE(ABORT)``), so the application's own connection can
only add rows. The organization and the actor are kept as plain ids (no foreign-key constraint, no
cascade): deleting a user or an organization leaves its history in place.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    occurred_at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    organization = models.ForeignKey(
        "accounts.Organization", verbose_name=_("organization"), on_delete=models.DO_NOTHING,
        db_constraint=False, null=True, blank=True, related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.DO_NOTHING,
        db_constraint=False, null=True, blank=True, related_name="+",
    )
    actor_label = models.CharField(_("who"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.CharField(_("object type"), max_length=64, blank=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_label = models.CharField(_("object"), max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["organization", "-occurred_at"], name="audit_org_recent")]
        default_permissions = ("add", "view")

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)
