"""Notifications to members: the bell in the console's header, and an e-mail for those who chose it.

- ``notification_create`` writes one notification for a member of an organization; when that
  member's ``Membership.notify_by_email`` is on and the user has an address, it enqueues
  ``tasks.send_notification_email`` on commit (the request never waits for a mail server).
- ``notification_email_send`` (the task's service) sends it through Django's e-mail backend at most
  once: ``emailed_at`` is claimed with a conditional UPDATE first and given back if sending fails,
  so a retry sends it then.
- ``notification_text`` is the sentence in the current language; the e-mail is written in the
  console's first language (Japanese).
- ``unread_count``, ``notifications_mark_read`` and ``notification_open`` serve the bell and the list;
  ``notifications_read_for`` marks read what points to a page the member has opened anyway.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import tasks
from accounts.models import Membership, Notification, NotificationKind

logger = logging.getLogger(__name__)

TEXTS = {
    NotificationKind.CONVERSATION_ASSIGNED: (
        gettext_lazy("%(actor)s assigned you the conversation with %(subject)s."),
        gettext_lazy("The conversation with %(subject)s was assigned to you."),  # no member did it (a rule)
    ),
}
EMAIL_SUBJECTS = {NotificationKind.CONVERSATION_ASSIGNED: gettext_lazy("A conversation was assigned to you")}


def notification_create(organization, recipient, kind: str, *, subject: str, url: str, actor=None) -> Notification:
    """Notify ``recipient`` (a member of ``organization``); e-mail them too if they chose it."""
    if not url.startswith("/") or not url_has_allowed_host_and_scheme(url, allowed_hosts=None):
        raise ValueError("a notification links to a path inside the console")
    notification = Notification.objects.create(
        organization=organization, recipient=recipient, kind=kind, subject=subject[:200], url=url[:300],
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
    )
    wants_email = Membership.objects.filter(
        organization=organization, user=recipient, notify_by_email=True
    ).exists()
    if wants_email and recipient.email:
        transaction.on_commit(lambda: tasks.send_notification_email.delay(notification.pk))
    return notification


def notification_text(notification: Notification) -> str:
    with_actor, without_actor = TEXTS[notification.kind]
    if notification.actor_id:
        return with_actor % {"actor": notification.actor.get_username(), "subject": notification.subject}
    return without_actor % {"subject": notification.subject}


def notification_email_send(notification_id: int) -> bool:
    """E-mail one notification to its recipient, once. False when there is nothing (left) to send."""
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return False
    notification = Notification.objects.select_related("recipient", "actor", "organization").get(pk=notification_id)
    address = notification.recipient.email
    if not address or not notification.recipient.is_active:
        return False
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    with translation.override(settings.LANGUAGE_CODE):
        subject = f"[{_('+Message Console')}] {EMAIL_SUBJECTS[notification.kind]}"
        body = "\n\n".join([
            notification_text(notification),
            base + notification.url,
            _("%(organization)s · You get these e-mails because you chose them; turn them off here: %(url)s")
            % {"organization": notification.organization.name, "url": base + reverse("accounts:notifications")},
        ])
    try:
        send_mail(subject, body, None, [address])
    except Exception:
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)  # the retry sends it
        raise
    return True


def unread_count(user, organization) -> int:
    return Notification.objects.filter(recipient=user, organization=organization, read_at__isnull=True).count()


def notifications_mark_read(user, organization) -> int:
    return Notification.objects.filter(recipient=user, organization=organization, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def notifications_read_for(user, organization, url: str) -> int:
    """The member looked at what these notifications point to (e.g. opened the conversation)."""
    return Notification.objects.filter(
        recipient=user, organization=organization, url=url, read_at__isnull=True
    ).update(read_at=timezone.now())


def notification_open(user, organization, pk: int) -> Notification | None:
    """Mark one of the member's notifications read; None if it is not theirs (in this organization)."""
    notification = Notification.objects.filter(recipient=user, organization=organization, pk=pk).first()
    if notification is not None and notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def email_preference_set(user, organization, enabled: bool) -> None:
    Membership.objects.filter(user=user, organization=organization).update(notify_by_email=enabled)
