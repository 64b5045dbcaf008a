"""The bell in the header, the notifications page, opening one, marking all read and the member's own
e-mail preference."""

import pytest
from django.urls import reverse

from accounts.models import Membership, NotificationKind, Role
from accounts.notifications import notification_create
from tests.accounts.factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    organization = OrganizationFactory()
    return {
        "organization": organization,
        "owner": member(organization, Role.OWNER, username="hanako"),
        "viewer": member(organization, Role.VIEWER, username="jiro"),
    }


def _notify(team, who="viewer"):
    return notification_create(team["organization"], team[who], NotificationKind.CONVERSATION_ASSIGNED,
                               subject="山田花子", url="/messaging/inbox/7/", actor=team["owner"])


def test_notification_bell_shows_the_unread_count_and_the_list_marks_read(client, team):
    client.force_login(team["viewer"])
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="notification-bell"' in page and "bell-count" not in page
    first, _second = _notify(team), _notify(team)
    page = client.get(reverse("dashboard")).content.decode()
    assert '<span class="bell-count" aria-hidden="true">2</span>' in page
    listing = client.get(reverse("accounts:notifications")).content.decode()
    assert "山田花子" in listing and "hanako" in listing and 'id="mark-all-read"' in listing
    opened = client.get(reverse("accounts:notification_go", args=[first.pk]))
    assert opened.status_code == 302 and opened["Location"] == "/messaging/inbox/7/"
    assert '<span class="bell-count" aria-hidden="true">1</span>' in client.get(reverse("dashboard")).content.decode()
    client.post(reverse("accounts:notifications_read"))
    assert "bell-count" not in client.get(reverse("dashboard")).content.decode()


def test_notification_of_someone_else_answers_404(client, team):
    notification = _notify(team, who="owner")
    client.force_login(team["viewer"])
    assert client.get(reverse("accounts:notification_go", args=[notification.pk])).status_code == 404
    client.force_login(member(OrganizationFactory(), Role.OWNER))
    assert client.get(reverse("accounts:notification_go", args=[notification.pk])).status_code == 404


def test_notification_empty_state_says_what_to_expect(client, team):
    client.force_login(team["viewer"])
    page = client.get(reverse("accounts:notifications"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "When someone assigns you a conversation in the inbox, you are told here." in page


def test_notification_email_preference_is_the_members_own(client, team):
    client.force_login(team["viewer"])
    client.post(reverse("accounts:notification_preferences"), {"notify_by_email": "on"})
    assert Membership.objects.get(user=team["viewer"]).notify_by_email is True
    assert Membership.objects.get(user=team["owner"]).notify_by_email is False
    assert 'id="notify-by-email" checked' in client.get(reverse("accounts:notifications")).content.decode()
    client.post(reverse("accounts:notification_preferences"), {})
    assert Membership.objects.get(user=team["viewer"]).notify_by_email is False


def test_notification_email_preference_needs_an_address(client, team):
    nobody = member(team["organization"], Role.OPERATOR, email="")
    client.force_login(nobody)
    response = client.post(reverse("accounts:notification_preferences"), {"notify_by_email": "on"}, follow=True)
    assert Membership.objects.get(user=nobody).notify_by_email is False
    assert "Ask an owner or admin to add one first." in response.content.decode() or "管理者" in response.content.decode()
