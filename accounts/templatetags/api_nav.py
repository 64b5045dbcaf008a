"""Navigation helpers for the API pages: how many webhook endpoints were disabled for failing."""

from django import template

from accounts.models import WebhookEndpoint

register = template.Library()


@register.simple_tag(takes_context=True)
def disabled_webhook_count(context) -> int:
    organization = context.get("shell_organization")
    if organization is None:
        return 0
    return WebhookEndpoint.objects.filter(organization=organization, disabled_at__isnull=False).count()
