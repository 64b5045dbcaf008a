"""Member management rules (accounts.services): nobody raises their own role, owners stay in charge,
and deactivation only for someone who belongs to this organization alone."""

import pytest
from django.urls import reverse

from accounts.models import Membership, Role
from tests.accounts.factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


def membership_of(org, user):
    return Membership.objects.get(organization=org, user=user)


def test_members_nobody_raises_their_own_role(client, org):
    member(org, Role.OWNER)
    admin = member(org, Role.ADMIN)
    operator = member(org, Role.OPERATOR)
    client.force_login(admin)
    mine = membership_of(org, admin)
    response = client.post(reverse("accounts:member_role", args=[mine.pk]), {"role": Role.OWNER}, follow=True)
    assert "Only an owner can grant" in response.content.decode()
    # An admin may lower themselves, but not move sideways or back up.
    client.post(reverse("accounts:member_role", args=[mine.pk]), {"role": Role.MARKETER})
    mine.refresh_from_db()
    assert mine.role == Role.MARKETER
    op = membership_of(org, operator)
    client.force_login(member(org, Role.ADMIN))
    client.post(reverse("accounts:member_role", args=[op.pk]), {"role": Role.ADMIN})  # others may be raised
    op.refresh_from_db()
    assert op.role == Role.ADMIN
    client.force_login(operator)
    response = client.post(reverse("accounts:member_role", args=[op.pk]), {"role": Role.VIEWER}, follow=True)
    op.refresh_from_db()
    assert op.role == Role.VIEWER
    lowered_admin = member(org, Role.ADMIN)
    client.force_login(lowered_admin)
    own = membership_of(org, lowered_admin)
    client.post(reverse("accounts:member_role", args=[own.pk]), {"role": Role.OPERATOR})
    own.refresh_from_db()
    response = client.post(reverse("accounts:member_role", args=[own.pk]), {"role": Role.MARKETER}, follow=True)
    assert response.status_code == 403  # an operator no longer manages members at all


def test_members_raise_own_role_refused_by_the_service(org):
    from django.core.exceptions import ValidationError

    from accounts.services import membership_change_role

    owner = member(org, Role.OWNER)
    admin = member(org, Role.ADMIN)
    with pytest.raises(ValidationError, match="cannot raise your own role"):
        # Even with an owner's authority the rule holds for one's own membership.
        membership_change_role(membership_of(org, admin), Role.OWNER, acting_role=Role.OWNER, actor=admin)
    membership_change_role(membership_of(org, admin), Role.OWNER, acting_role=Role.OWNER, actor=owner)


def test_members_last_owner_cannot_be_deactivated_demoted_or_removed(client, org):
    owner = member(org, Role.OWNER)
    second = member(org, Role.OWNER)
    client.force_login(second)
    own = membership_of(org, owner)
    client.post(reverse("accounts:member_deactivate", args=[own.pk]))
    owner.refresh_from_db()
    assert not owner.is_active
    # The one active owner left cannot step down while the other is deactivated.
    mine = membership_of(org, second)
    response = client.post(reverse("accounts:member_role", args=[mine.pk]), {"role": Role.ADMIN}, follow=True)
    assert "last owner" in response.content.decode()
    response = client.post(reverse("accounts:member_remove", args=[mine.pk]), follow=True)
    assert "last owner" in response.content.decode()
    # Removing the deactivated owner is allowed: an active owner remains.
    client.post(reverse("accounts:member_remove", args=[own.pk]))
    assert not Membership.objects.filter(pk=own.pk).exists()


def test_members_deactivation_rules(client, org):
    owner = member(org, Role.OWNER)
    admin = member(org, Role.ADMIN)
    shared = member(org, Role.MARKETER)
    Membership.objects.create(organization=OrganizationFactory(), user=shared, role=Role.VIEWER)
    client.force_login(admin)
    response = client.post(reverse("accounts:member_deactivate", args=[membership_of(org, owner).pk]), follow=True)
    assert "Only an owner can deactivate an owner" in response.content.decode()
    response = client.post(reverse("accounts:member_deactivate", args=[membership_of(org, admin).pk]), follow=True)
    assert "cannot deactivate yourself" in response.content.decode()
    response = client.post(reverse("accounts:member_deactivate", args=[membership_of(org, shared).pk]), follow=True)
    assert "also a member of another organization" in response.content.decode()
    for user in (owner, admin, shared):
        user.refresh_from_db()
        assert user.is_active
    other = Membership.objects.create(organization=OrganizationFactory(), user=member(OrganizationFactory()),
                                      role=Role.VIEWER)
    assert client.post(reverse("accounts:member_deactivate", args=[other.pk])).status_code == 404


def test_members_page_shows_last_sign_in(client, org):
    owner = member(org, Role.OWNER)
    never = member(org, Role.VIEWER)
    client.post(reverse("login"), {"username": owner.username, "password": "correct-horse-battery-staple"})
    page = client.get(reverse("accounts:members")).content.decode()
    assert "Last sign-in" in page
    owner.refresh_from_db()
    from django.utils import timezone

    assert timezone.localtime(owner.last_login).strftime("%Y-%m-%d %H:%M") in page
    row = page.split(f'id="member-{membership_of(org, never).pk}"')[1].split("</tr>")[0]
    assert "Never signed in" in row
