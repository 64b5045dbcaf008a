"""How a campaign is shown wherever it appears (list, campaign page, dashboard, calendar):

- ``{% recurrence_display campaign.recurrence %}``: a recurrence in words (「↻ 毎週月曜 10:00」), or
  the raw crontab for one that cannot be said in words;
- ``{{ campaign.status|status_badge_class }}``: the colour classes of a status (the list's badges and
  the calendar's entries alike).
"""

from django import template
from django.utils.html import format_html

from campaigns.recurrence import recurrence_words

register = template.Library()

STATUS_BADGE_CLASSES = {
    "draft": "status-draft",
    "pending_approval": "badge-warn badge-dot",
    "approved": "badge-info",
    "scheduled": "badge-info badge-dot",
    "running": "badge-ok badge-dot status-running",
    "paused": "badge-warn",
    "completed": "badge-ok",
    "failed": "badge-bad",
}


@register.filter
def status_badge_class(status: str) -> str:
    return STATUS_BADGE_CLASSES.get(status, "")


@register.simple_tag
def recurrence_display(expression: str):
    if not expression:
        return ""
    words = recurrence_words(expression)
    if words:
        return format_html('<span class="recurrence" title="{}">↻ {}</span>', expression, words)
    return format_html('<span class="recurrence">↻ <code>{}</code></span>', expression)


@register.filter
def recurrence_text(expression: str) -> str:
    """The words of a recurrence, or its crontab (plain text, e.g. for a title attribute)."""
    return (recurrence_words(expression) or expression) if expression else ""
