"""The campaign status machine: every allowed transition succeeds, every other one is refused, and
the conditional UPDATE refuses a stale campaign object."""

from itertools import product

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import APPROVED_STATES, Campaign, CampaignStatus
from campaigns.status import TERMINAL, TRANSITIONS, TransitionError, campaign_transition, can_transition
from tests.accounts.factories import UserFactory
from tests.accounts.ja_pending import assert_japanese
from tests.campaigns.factories import CampaignFactory

pytestmark = pytest.mark.django_db

S = CampaignStatus

EXPECTED = {
    S.DRAFT: {S.PENDING_APPROVAL, S.CANCELLED},
    S.PENDING_APPROVAL: {S.APPROVED, S.DRAFT, S.CANCELLED},
    S.APPROVED: {S.SCHEDULED, S.RUNNING, S.DRAFT, S.CANCELLED},
    S.SCHEDULED: {S.RUNNING, S.APPROVED, S.CANCELLED},
    S.RUNNING: {S.PAUSED, S.COMPLETED, S.CANCELLED, S.FAILED},
    S.PAUSED: {S.RUNNING, S.CANCELLED, S.FAILED},
    S.COMPLETED: set(),
    S.CANCELLED: set(),
    S.FAILED: set(),
}
ALLOWED = [(a, b) for a, targets in EXPECTED.items() for b in sorted(targets)]
DISALLOWED = [(a, b) for a, b in product(S.values, S.values) if b not in EXPECTED[a]]


def campaign_in(status):
    """A campaign sitting in ``status``, with whatever that state needs to satisfy the constraints."""
    fields = {}
    if status in APPROVED_STATES:
        fields.update(approved_by=UserFactory(), approved_at=timezone.now())
    if status == S.SCHEDULED:
        fields["scheduled_at"] = timezone.now()
    return CampaignFactory(status=status, **fields)


def fields_for(target):
    """What the caller passes along when entering ``target`` (approval, schedule)."""
    if target == S.APPROVED:
        return {"approved_by": UserFactory(), "approved_at": timezone.now()}
    if target == S.SCHEDULED:
        return {"scheduled_at": timezone.now()}
    return {}


def test_the_table_is_the_documented_machine():
    assert {state: set(targets) for state, targets in TRANSITIONS.items()} == EXPECTED
    assert set(TRANSITIONS) == set(S.values)
    assert TERMINAL == {S.COMPLETED, S.CANCELLED, S.FAILED}


@pytest.mark.parametrize(("current", "target"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition_succeeds(current, target):
    campaign = campaign_in(current)
    assert can_transition(current, target)
    result = campaign_transition(campaign, target, reason="テスト", **fields_for(target))
    assert result is campaign
    assert campaign.status == target
    stored = Campaign.objects.get(pk=campaign.pk)
    assert stored.status == target
    assert stored.status_reason == "テスト"
    if target == S.RUNNING:
        assert stored.started_at is not None
    if target in TERMINAL:
        assert stored.finished_at is not None
    else:
        assert stored.finished_at is None


@pytest.mark.parametrize(("current", "target"), DISALLOWED, ids=[f"{a}->{b}" for a, b in DISALLOWED])
def test_disallowed_transition_raises(current, target):
    campaign = campaign_in(current)
    assert not can_transition(current, target)
    with pytest.raises(TransitionError) as caught:
        campaign_transition(campaign, target, **fields_for(target))
    assert caught.value.code == "invalid_transition"
    assert Campaign.objects.get(pk=campaign.pk).status == current
    assert campaign.status == current


@pytest.mark.parametrize(("current", "target"), [(S.DRAFT, "launched"), ("launched", S.RUNNING), (S.DRAFT, "")])
def test_unknown_states_raise_transition_error(current, target):
    campaign = CampaignFactory.build(status=current)
    campaign.pk = 0
    with pytest.raises(TransitionError):
        campaign_transition(campaign, target)


def test_resume_keeps_the_first_start_time():
    campaign = campaign_in(S.APPROVED)
    campaign_transition(campaign, S.RUNNING)
    started = Campaign.objects.get(pk=campaign.pk).started_at
    campaign_transition(campaign, S.PAUSED)
    campaign_transition(campaign, S.RUNNING)
    assert Campaign.objects.get(pk=campaign.pk).started_at == started


def test_approving_without_an_approver_is_refused_by_the_database():
    campaign = campaign_in(S.PENDING_APPROVAL)
    with pytest.raises(IntegrityError), transaction.atomic():
        campaign_transition(campaign, S.APPROVED)
    assert Campaign.objects.get(pk=campaign.pk).status == S.PENDING_APPROVAL


def test_stale_object_is_refused():
    campaign = campaign_in(S.DRAFT)
    first = Campaign.objects.get(pk=campaign.pk)
    second = Campaign.objects.get(pk=campaign.pk)
    campaign_transition(first, S.PENDING_APPROVAL)
    with pytest.raises(TransitionError) as caught:
        campaign_transition(second, S.PENDING_APPROVAL)
    assert caught.value.code == "stale_transition"
    assert second.status == S.PENDING_APPROVAL  # refreshed, so the caller can show what happened
    assert Campaign.objects.get(pk=campaign.pk).status == S.PENDING_APPROVAL


def test_stale_object_cannot_undo_a_cancel():
    campaign = campaign_in(S.RUNNING)
    first = Campaign.objects.get(pk=campaign.pk)
    second = Campaign.objects.get(pk=campaign.pk)
    campaign_transition(first, S.CANCELLED, reason="中止")
    with pytest.raises(TransitionError) as caught:
        campaign_transition(second, S.PAUSED)
    assert caught.value.code == "stale_transition"
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.status, stored.status_reason) == (S.CANCELLED, "中止")


def test_only_one_of_two_racing_approvals_wins():
    campaign = campaign_in(S.PENDING_APPROVAL)
    copies = [Campaign.objects.get(pk=campaign.pk) for _ in range(2)]
    outcomes = []
    for copy, target in zip(copies, (S.APPROVED, S.DRAFT), strict=True):
        try:
            campaign_transition(copy, target, **fields_for(target))
            outcomes.append("ok")
        except TransitionError:
            outcomes.append("refused")
    assert outcomes == ["ok", "refused"]
    assert Campaign.objects.get(pk=campaign.pk).status == S.APPROVED


def test_transition_error_message_names_both_states():
    campaign = campaign_in(S.COMPLETED)
    with pytest.raises(TransitionError) as caught:
        campaign_transition(campaign, S.RUNNING)
    assert "Completed" in caught.value.messages[0] and "Running" in caught.value.messages[0]


def test_transition_error_in_japanese():
    campaign = campaign_in(S.COMPLETED)

    def message():
        with pytest.raises(TransitionError) as caught:
            campaign_transition(campaign, S.RUNNING)
        return caught.value.messages[0]

    assert_japanese(message, "A campaign cannot go from “%(current)s” to “%(target)s”.", "キャンペーン")
