"""Tenant isolation in the console (docs/architecture.md, "Tenancy and security"): a member of
organization A gets 404 for every object of organization B, in every console view that takes an id.

The Django admin is for platform superusers only; tenant staff are refused there altogether
(tests/security/test_admin_bypass.py)."""

import pytest
from django.urls import reverse

from tests.accounts.factories import OrganizationFactory
from tests.messaging.factories import tenant_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Organizations Alpha and Bravo, each with one row of every scoped model."""
    alpha = OrganizationFactory(name="Alpha商事", slug="alpha")
    bravo = OrganizationFactory(name="Bravo物産", slug="bravo")
    return {
        "alpha": alpha,
        "bravo": bravo,
        "a": tenant_objects(alpha, "alpha"),
        "b": tenant_objects(bravo, "bravo"),
    }


# --- The console --------------------------------------------------------------------------------


def test_dashboard_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_dashboard_shows_the_members_org(client, world):
    client.force_login(world["a"]["auth.user"])
    response = client.get("/")
    assert response.status_code == 200
    assert "Alpha商事" in response.content.decode()
    assert "Bravo" not in response.content.decode()


def test_session_cannot_switch_into_another_org(client, world):
    client.force_login(world["a"]["auth.user"])
    session = client.session
    session["organization_id"] = world["bravo"].pk
    session.save()
    content = client.get("/").content.decode()
    assert "Bravo" not in content



# --- Every console view that takes an object id -------------------------------------------------

# URL prefix → the model whose id the view's <pk> is (longest prefix wins). A new view with an id in
# its URL must be added here, so its tenant isolation is proved like the others'.
PK_MODELS = {
    "accounts/official/": "accounts.officialaccount",
    "accounts/gateways/": "accounts.gatewayaccount",
    "accounts/members/": "accounts.membership",
    "accounts/two-factor/members/": "accounts.membership",
    "campaigns/contacts/lists/": "campaigns.contactlist",
    "campaigns/contacts/import/": "campaigns.importjob",
    "campaigns/contacts/segments/": "campaigns.segment",
    "campaigns/contacts/fields/": "campaigns.customfield",
    "campaigns/contacts/": "campaigns.contact",
    "campaigns/": "campaigns.campaign",
    "campaigns/templates/": "campaigns.campaigntemplate",
    "messaging/inbox/": "messaging.conversation",
    "messaging/inbox/media/": "messaging.conversationmessage",
    "consent/": "campaigns.contact",
    "accounts/api-keys/": "accounts.apikey",
    "accounts/webhooks/": "accounts.webhookendpoint",
    "accounts/webhooks/deliveries/": "accounts.webhookdelivery",
    "accounts/test-numbers/": "messaging.testnumber",
    "accounts/members/invitations/": "accounts.invitation",
    "accounts/sessions/": "accounts.membersession",
    "messaging/automation/": "accounts.officialaccount",
    "messaging/automation/rules/": "messaging.keywordrule",
    "accounts/notifications/": "accounts.notification",
}
# Not member views: carriers call these, authenticated by signature or secret, not by session.
# The opt-out link page and tracked links answer anyone holding a signed token. Public media
# (campaign media that carriers fetch, logos) is public by design; private files have member views.
# An invitation link and a password-reset link are public too: the token is the credential.
PUBLIC_PREFIXES = ("messaging/webhooks/", "o/", "messaging/r/", "media/", "accounts/invitations/", "password/reset/")


def _console_routes_with_ids():
    from django.urls import URLPattern, URLResolver, get_resolver

    routes = []

    def walk(resolver, prefix, namespace):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route.startswith("admin/"):
                    continue
                inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else pattern.namespace or namespace
                walk(pattern, route, inner)
            elif isinstance(pattern, URLPattern) and pattern.pattern.converters:
                if route.startswith(PUBLIC_PREFIXES):
                    continue
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                routes.append((route, name, sorted(pattern.pattern.converters)))

    walk(get_resolver(), "", None)
    return routes


CONSOLE_ROUTES = _console_routes_with_ids()


def _model_for(route):
    matches = [prefix for prefix in PK_MODELS if route.startswith(prefix)]
    return PK_MODELS[max(matches, key=len)] if matches else None


def test_every_console_route_with_an_id_is_mapped():
    for route, _name, kwargs in CONSOLE_ROUTES:
        assert kwargs == ["pk"], f"{route}: teach this test which object {kwargs} names"
        assert _model_for(route), f"{route}: add its model to PK_MODELS"


@pytest.fixture
def import_jobs(world):
    from campaigns.models import ImportJob

    return {
        side: ImportJob.objects.create(
            organization=world[org],
            contact_list=world[side]["campaigns.contactlist"],
            created_by=world[side]["auth.user"],
            file="imports/test.csv",
            original_name="test.csv",
            file_format="csv",
        )
        for side, org in (("a", "alpha"), ("b", "bravo"))
    }


@pytest.mark.parametrize(("route", "name"), [(r, n) for r, n, _ in CONSOLE_ROUTES], ids=[r for r, _, _ in CONSOLE_ROUTES])
def test_console_views_answer_404_for_another_orgs_object(client, world, import_jobs, route, name):
    """Another organization's id answers 404 — or, where a view checks its input first, exactly what a
    nonexistent id answers — and its row is left untouched."""
    label = _model_for(route)
    objects = {side: import_jobs[side] if label == "campaigns.importjob" else world[side][label] for side in "ab"}
    model = type(objects["b"])
    before = model.objects.filter(pk=objects["b"].pk).values().get()
    client.force_login(world["a"]["auth.user"])  # owner of Alpha: every permission there
    foreign = reverse(name, kwargs={"pk": objects["b"].pk})
    missing = reverse(name, kwargs={"pk": 10**9})
    assert client.get(foreign).status_code in (404, 405), foreign  # 405: a POST-only view, reveals nothing
    for headers in ({}, {"HX-Request": "true"}):
        status = client.post(foreign, {}, headers=headers).status_code
        if status != 404:
            assert status == client.post(missing, {}, headers=headers).status_code, foreign
    assert model.objects.filter(pk=objects["b"].pk).values().get() == before
    own = reverse(name, kwargs={"pk": objects["a"].pk})
    assert client.get(own).status_code != 404, f"{own}: the mapping is wrong, or the view is not reachable at all"
