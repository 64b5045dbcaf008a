"""Tenant scoping and roles on the server: querysets limited to the user's organizations, another
organization's id answering 404, and the role table checked by the view guard."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from accounts.decorators import member_required
from accounts.models import OfficialAccount, Organization, Role
from accounts.selectors import SESSION_KEY, current_organization
from accounts.tenancy import (
    ROLE_PERMISSIONS,
    get_scoped_or_404,
    has_permission,
    scoped,
    user_org_ids,
    user_role,
)
from campaigns.models import Contact
from tests.accounts.factories import (
    MembershipFactory,
    OfficialAccountFactory,
    OrganizationFactory,
    UserFactory,
    member,
)
from tests.campaigns.factories import ContactFactory

pytestmark = pytest.mark.django_db

EXPECTED_PERMISSIONS = {
    Role.OWNER: {"view", "compose", "approve", "manage", "operate"},
    Role.ADMIN: {"view", "compose", "approve", "manage", "operate"},
    Role.MARKETER: {"view", "compose"},
    Role.OPERATOR: {"view", "operate"},
    Role.VIEWER: {"view"},
}


@pytest.fixture
def orgs():
    return OrganizationFactory(name="Alpha"), OrganizationFactory(name="Bravo")


def test_role_table():
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == EXPECTED_PERMISSIONS
    assert set(ROLE_PERMISSIONS) == set(Role)


def test_user_org_ids(orgs):
    alpha, bravo = orgs
    user = member(alpha, Role.VIEWER)
    assert user_org_ids(user) == [alpha.id]
    assert user_org_ids(AnonymousUser()) == []
    assert user_org_ids(UserFactory()) == []


def test_scoped_limits_to_the_users_organizations(orgs):
    alpha, bravo = orgs
    mine, theirs = ContactFactory(organization=alpha), ContactFactory(organization=bravo)
    user = member(alpha)
    assert list(scoped(Contact.objects.all(), user)) == [mine]
    assert theirs not in scoped(Contact.objects.all(), user)


def test_scoped_follows_a_path_to_the_organization(orgs):
    alpha, bravo = orgs
    from tests.accounts.factories import CarrierReviewFactory

    mine = CarrierReviewFactory(account=OfficialAccountFactory(organization=alpha))
    CarrierReviewFactory(account=OfficialAccountFactory(organization=bravo))
    user = member(alpha)
    assert list(scoped(type(mine).objects.all(), user, "account__organization")) == [mine]
    assert list(scoped(Organization.objects.all(), user, "id")) == [alpha]


def test_member_of_two_orgs_sees_both(orgs):
    alpha, bravo = orgs
    user = member(alpha)
    MembershipFactory(organization=bravo, user=user, role=Role.VIEWER)
    ContactFactory(organization=alpha), ContactFactory(organization=bravo), ContactFactory()
    assert set(scoped(Contact.objects.all(), user).values_list("organization", flat=True)) == {alpha.id, bravo.id}


def test_superuser_sees_everything(orgs):
    ContactFactory(organization=orgs[0]), ContactFactory(organization=orgs[1])
    assert scoped(Contact.objects.all(), UserFactory(is_superuser=True)).count() == 2


def test_non_member_and_anonymous_see_nothing(orgs):
    ContactFactory(organization=orgs[0])
    assert not scoped(Contact.objects.all(), UserFactory()).exists()
    assert not scoped(Contact.objects.all(), AnonymousUser()).exists()


def test_get_scoped_or_404(orgs):
    alpha, bravo = orgs
    mine = OfficialAccountFactory(organization=alpha)
    theirs = OfficialAccountFactory(organization=bravo)
    user = member(alpha)
    assert get_scoped_or_404(OfficialAccount.objects.all(), user, pk=mine.pk) == mine
    with pytest.raises(Http404):
        get_scoped_or_404(OfficialAccount.objects.all(), user, pk=theirs.pk)
    with pytest.raises(Http404):
        get_scoped_or_404(OfficialAccount.objects.all(), user, pk=10**9)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", ["view", "compose", "approve", "manage", "operate"])
def test_has_permission_per_role(orgs, role, permission):
    alpha, bravo = orgs
    user = member(alpha, role)
    assert user_role(user, alpha.id) == role
    assert has_permission(user, alpha.id, permission) is (permission in EXPECTED_PERMISSIONS[role])
    assert has_permission(user, bravo.id, permission) is False  # not a member there


def test_roles_are_per_organization(orgs):
    alpha, bravo = orgs
    user = member(alpha, Role.OWNER)
    MembershipFactory(organization=bravo, user=user, role=Role.VIEWER)
    assert has_permission(user, alpha.id, "manage")
    assert not has_permission(user, bravo.id, "manage")
    assert has_permission(user, bravo.id, "view")


def test_superuser_has_every_permission(orgs):
    assert has_permission(UserFactory(is_superuser=True), orgs[0].id, "manage")


# --- current_organization and the view guard ----------------------------------------------------


def _request(user, session=None):
    request = RequestFactory().get("/somewhere/")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.session.update(session or {})
    request.user = user
    return request


def test_current_organization_uses_the_session_choice_only_among_memberships(orgs):
    alpha, bravo = orgs
    user = member(alpha)
    assert current_organization(_request(user)) == alpha
    assert current_organization(_request(user, {SESSION_KEY: bravo.id})) == alpha  # not a member of Bravo
    MembershipFactory(organization=bravo, user=user)
    user = type(user).objects.get(pk=user.pk)  # drop the cached org ids
    assert current_organization(_request(user, {SESSION_KEY: bravo.id})) == bravo
    assert current_organization(_request(UserFactory())) is None


@member_required("compose")
def _compose_view(request):
    return HttpResponse(f"{request.organization.pk}:{request.role}")


def test_guard_sends_anonymous_users_to_login():
    response = _compose_view(_request(AnonymousUser()))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_guard_refuses_a_non_member():
    with pytest.raises(PermissionDenied):
        _compose_view(_request(UserFactory()))


@pytest.mark.parametrize("role", list(Role))
def test_guard_checks_the_role(orgs, role):
    user = member(orgs[0], role)
    if "compose" in EXPECTED_PERMISSIONS[role]:
        assert _compose_view(_request(user)).content.decode() == f"{orgs[0].pk}:{role}"
    else:
        with pytest.raises(PermissionDenied):
            _compose_view(_request(user))


def test_guard_uses_the_role_in_the_current_organization(orgs):
    alpha, bravo = orgs
    user = member(alpha, Role.VIEWER)
    MembershipFactory(organization=bravo, user=user, role=Role.MARKETER)
    with pytest.raises(PermissionDenied):
        _compose_view(_request(user, {SESSION_KEY: alpha.id}))
    assert _compose_view(_request(user, {SESSION_KEY: bravo.id})).content.decode() == f"{bravo.pk}:marketer"
