"""The campaign status machine: every allowed transition, in one place.

draft → pending approval → approved / scheduled → running ⇄ paused → completed / cancelled / failed
"""

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, CampaignStatus

S = CampaignStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.DRAFT, S.CANCELLED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.RUNNING, S.DRAFT, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.APPROVED, S.CANCELLED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL = frozenset(state for state, targets in TRANSITIONS.items() if not targets)


class TransitionError(ValidationError):
    pass


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def _label(status: str) -> str:
    """The status's display name; an unknown value (bad input) is shown as given, not a ValueError."""
    return CampaignStatus(status).label if status in CampaignStatus.values else repr(status)


def campaign_transition(campaign: Campaign, target: str, *, reason: str = "", **fields) -> Campaign:
    """Move ``campaign`` to ``target`` if allowed, with a conditional UPDATE on the current status.

    Two racing callers cannot both succeed: the second finds the status changed and is refused.
    Extra ``fields`` (approved_by, scheduled_at, …) are written in the same UPDATE.
    """
    current = campaign.status
    if not can_transition(current, target):
        raise TransitionError(
            _("A campaign cannot go from “%(current)s” to “%(target)s”.")
            % {"current": _label(current), "target": _label(target)},
            code="invalid_transition",
        )
    now = timezone.now()
    values = {"status": target, "status_reason": reason, "updated_at": now, **fields}
    if target == S.RUNNING and not campaign.started_at:
        values.setdefault("started_at", now)
    if target in TERMINAL:
        values.setdefault("finished_at", now)
    updated = Campaign.objects.filter(pk=campaign.pk, status=current).update(**values)
    if not updated:
        campaign.refresh_from_db(fields=["status"])
        raise TransitionError(
            _("The campaign changed meanwhile; it is now “%(current)s”.") % {"current": campaign.get_status_display()},
            code="stale_transition",
        )
    for name, value in values.items():
        setattr(campaign, name, value)
    return campaign
