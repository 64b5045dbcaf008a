"""Tenant isolation in the Django admin (docs/architecture.md, "Tenancy and security"): a staff member of organization A gets 404 for
every object of organization B, whatever the model; lists, filters and choices show only A's rows;
roles without "manage" cannot write; raw carrier events are for superusers only."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from accounts.admin_scoping import OrgScopedAdmin
from accounts.models import CarrierReview, Role
from campaigns.models import Consent
from messaging.models import ProviderEvent
from tests.accounts.factories import MembershipFactory, OrganizationFactory, UserFactory, member
from tests.messaging.factories import tenant_objects

pytestmark = pytest.mark.django_db

SCOPED = sorted(
    (model for model, model_admin in admin.site._registry.items() if isinstance(model_admin, OrgScopedAdmin)),
    key=lambda model: model._meta.label_lower,
)
UNSCOPED = sorted(
    (model for model, model_admin in admin.site._registry.items() if not isinstance(model_admin, OrgScopedAdmin)),
    key=lambda model: model._meta.label_lower,
)


def _unscoped_objects(tag):
    """One row of every registered model that belongs to no organization."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    client_info = {"user_agent": "test", "ip_address": "10.0.0.2", "username": f"{tag}-user", "http_accept": "*/*", "path_info": "/login/"}
    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    return {
        "auth.group": Group.objects.create(name=f"{tag}-group"),
        "django_celery_beat.intervalschedule": interval,
        "django_celery_beat.periodictask": PeriodicTask.objects.create(name=f"{tag}-task", task="x", interval=interval),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(clocked_time=timezone.now()),
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create(minute="7", hour="3"),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(event="sunrise", latitude=35.68, longitude=139.76),
        "axes.accessattempt": AccessAttempt.objects.create(get_data="", post_data="", failures_since_start=1, **client_info),
        "axes.accesslog": AccessLog.objects.create(**client_info),
        "axes.accessfailurelog": AccessFailureLog.objects.create(**client_info),
        "messaging.providerevent": ProviderEvent.objects.create(provider="rbm", event_id=f"{tag}-event", payload={}),
    }


@pytest.fixture
def world():
    """Organizations Alpha and Bravo, each with one row of every scoped model."""
    alpha = OrganizationFactory(name="Alpha商事", slug="alpha")
    bravo = OrganizationFactory(name="Bravo物産", slug="bravo")
    return {
        "alpha": alpha,
        "bravo": bravo,
        "a": tenant_objects(alpha, "alpha"),
        "b": {**tenant_objects(bravo, "bravo"), **_unscoped_objects("bravo")},
    }


def staff(organization, role=Role.OWNER, **kwargs):
    return member(organization, role, is_staff=True, **kwargs)


def admin_url(obj, view):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def changelist_url(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def add_url(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def test_every_registered_model_is_covered(world):
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered <= set(world["b"]), "add a row of the newly registered model to the world fixture"
    assert {m._meta.label_lower for m in SCOPED} <= set(world["a"])


# --- Another organization's objects answer 404 --------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.VIEWER])
@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label_lower)
def test_other_orgs_objects_answer_404(client, world, role, model):
    client.force_login(staff(world["alpha"], role))
    obj = world["b"][model._meta.label_lower]
    for view in ("change", "delete", "history"):
        url = admin_url(obj, view)
        assert client.get(url).status_code == 404, url
    assert client.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 404
    assert model._default_manager.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label_lower)
def test_posting_a_change_to_another_orgs_object_answers_404(client, world, model):
    client.force_login(staff(world["alpha"]))
    obj = world["b"][model._meta.label_lower]
    assert client.post(admin_url(obj, "change"), {"name": "hijacked"}).status_code == 404


@pytest.mark.parametrize("model", UNSCOPED, ids=lambda m: m._meta.label_lower)
def test_unscoped_models_are_closed_to_org_staff(client, world, model):
    client.force_login(staff(world["alpha"]))
    obj = world["b"][model._meta.label_lower]
    for view in ("change", "delete", "history"):
        assert client.get(admin_url(obj, view)).status_code in (403, 404)
    assert client.get(changelist_url(model)).status_code == 403


def test_users_of_another_org_are_not_reachable(client, world):
    client.force_login(staff(world["alpha"]))
    bravo_user = world["b"]["auth.user"]
    for view in ("change", "delete", "history"):
        assert client.get(admin_url(bravo_user, view)).status_code in (403, 404)


# --- Lists and filters --------------------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label_lower)
def test_list_shows_only_own_orgs_rows(client, world, model):
    client.force_login(staff(world["alpha"], Role.VIEWER))
    response = client.get(changelist_url(model))
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    label = model._meta.label_lower
    assert world["a"][label].pk in shown
    assert world["b"][label].pk not in shown


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label_lower)
def test_list_page_mentions_nothing_of_another_org(client, world, model):
    """Not in the rows, and not in the sidebar filters (organization, contact list, …) either."""
    client.force_login(staff(world["alpha"]))
    content = client.get(changelist_url(model)).content.decode()
    assert "Bravo" not in content
    assert "bravo-" not in content


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label_lower)
def test_superuser_sees_every_org(client, world, model):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(changelist_url(model))
    shown = {obj.pk for obj in response.context["cl"].result_list}
    label = model._meta.label_lower
    assert {world["a"][label].pk, world["b"][label].pk} <= shown
    assert client.get(admin_url(world["b"][label], "change")).status_code == 200


def test_search_does_not_reach_another_org(client, world):
    client.force_login(staff(world["alpha"]))
    response = client.get(changelist_url(Consent), {"q": world["b"]["campaigns.contact"].phone})
    assert list(response.context["cl"].result_list) == []


# --- Choices in add forms -----------------------------------------------------------------------


# Carrier reviews are recorded by superusers only (a carrier's decision, not the organization's).
ADDABLE = [
    m
    for m in SCOPED
    if m._meta.label_lower
    not in ("accounts.organization", "accounts.apikey", "messaging.delivery", "accounts.carrierreview")
]


@pytest.mark.parametrize("model", ADDABLE, ids=lambda m: m._meta.label_lower)
def test_add_form_offers_only_own_orgs_objects(client, world, model):
    client.force_login(staff(world["alpha"]))
    response = client.get(add_url(model))
    assert response.status_code == 200
    form = response.context["adminform"].form
    choice_fields = {name: field for name, field in form.fields.items() if hasattr(field, "queryset")}
    assert choice_fields, "expected at least one relation to choose"
    bravo_objects = list(world["b"].values())
    for name, field in choice_fields.items():
        offered = set(field.queryset)
        for obj in bravo_objects:
            assert obj not in offered, f"{name} offers {obj!r} of another organization"
        alpha_obj = world["a"].get(field.queryset.model._meta.label_lower)
        if alpha_obj is not None:
            assert alpha_obj in offered, f"{name} should offer {alpha_obj!r}"


def test_raw_id_of_another_orgs_contact_is_refused(client, world):
    client.force_login(staff(world["alpha"]))
    before = Consent.objects.count()
    response = client.post(
        add_url(Consent),
        {
            "organization": world["alpha"].pk,
            "contact": world["b"]["campaigns.contact"].pk,
            "granted_at_0": "2026-11-01",
            "granted_at_1": "10:00:00",
            "method": "web_form",
            "source": "https://alpha.example.jp/form",
            "wording_version": "v1",
        },
    )
    assert response.status_code == 200  # the form again, with an error
    assert "contact" in response.context["adminform"].form.errors
    assert Consent.objects.count() == before


def test_cannot_add_a_row_to_another_org(client, world):
    client.force_login(staff(world["alpha"]))
    response = client.post(
        add_url(world["a"]["campaigns.contactlist"].__class__),
        {"organization": world["bravo"].pk, "name": "sneaky", "purpose": "promotion"},
    )
    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors
    assert not world["bravo"].contact_lists.filter(name="sneaky").exists()


# --- Roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.OPERATOR])
@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label_lower)
def test_roles_without_manage_cannot_write(client, world, role, model):
    client.force_login(staff(world["alpha"], role))
    obj = world["a"][model._meta.label_lower]
    assert client.get(add_url(model)).status_code == 403
    assert client.post(add_url(model), {}).status_code == 403
    response = client.get(admin_url(obj, "change"))
    assert response.status_code == 200  # read-only view of their own organization's row
    assert not response.context["has_change_permission"]
    assert client.post(admin_url(obj, "change"), {}).status_code == 403
    assert client.get(admin_url(obj, "delete")).status_code == 403
    assert client.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 403
    assert model._default_manager.filter(pk=obj.pk).exists()


def test_viewer_cannot_change_a_contact_list(client, world):
    contact_list = world["a"]["campaigns.contactlist"]
    client.force_login(staff(world["alpha"], Role.VIEWER))
    response = client.post(
        admin_url(contact_list, "change"),
        {"organization": world["alpha"].pk, "name": "renamed", "purpose": "promotion"},
    )
    assert response.status_code == 403
    contact_list.refresh_from_db()
    assert contact_list.name == "alpha-list"


def test_owner_can_change_own_orgs_contact_list(client, world):
    contact_list = world["a"]["campaigns.contactlist"]
    client.force_login(staff(world["alpha"], Role.OWNER))
    response = client.post(
        admin_url(contact_list, "change"),
        {"organization": world["alpha"].pk, "name": "renamed", "purpose": "promotion", "description": ""},
    )
    assert response.status_code == 302
    contact_list.refresh_from_db()
    assert contact_list.name == "renamed"


def test_owning_one_org_gives_no_write_access_to_another_where_only_viewer(client, world):
    """Roles are per organization: an owner elsewhere is still a viewer here."""
    user = staff(OrganizationFactory(name="Charlie"), Role.OWNER)
    MembershipFactory(organization=world["alpha"], user=user, role=Role.VIEWER)
    client.force_login(user)
    contact_list = world["a"]["campaigns.contactlist"]
    assert client.get(admin_url(contact_list, "change")).status_code == 200
    response = client.post(
        admin_url(contact_list, "change"),
        {"organization": world["alpha"].pk, "name": "renamed", "purpose": "promotion", "description": ""},
    )
    assert response.status_code == 403
    assert client.post(admin_url(contact_list, "delete"), {"post": "yes"}).status_code == 403
    contact_list.refresh_from_db()
    assert contact_list.name == "alpha-list"
    # nor delete them with the list's bulk action
    response = client.post(
        changelist_url(type(contact_list)),
        {"action": "delete_selected", "_selected_action": [contact_list.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert type(contact_list).objects.filter(pk=contact_list.pk).exists()
    # and may not create rows in the organization where they only view
    response = client.post(add_url(type(contact_list)), {"organization": world["alpha"].pk, "name": "new", "purpose": "promotion"})
    assert not world["alpha"].contact_lists.filter(name="new").exists()


def test_non_staff_member_is_sent_to_the_admin_login(client, world):
    client.force_login(member(world["alpha"], Role.OWNER))
    response = client.get(changelist_url(type(world["a"]["campaigns.contact"])))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_any_membership_sees_no_scoped_module(client, world):
    client.force_login(UserFactory(is_staff=True))
    model = type(world["a"]["campaigns.contact"])
    assert client.get(changelist_url(model)).status_code == 403


# --- Provider events: superusers only -----------------------------------------------------------


def test_provider_event_admin_is_superuser_only(client, world):
    event = world["b"]["messaging.providerevent"]
    user = staff(world["alpha"], Role.OWNER)
    # even explicit model permissions do not open it
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="messaging", codename__endswith="providerevent"))
    client.force_login(user)
    assert client.get(changelist_url(ProviderEvent)).status_code == 403
    assert client.get(admin_url(event, "change")).status_code == 403
    assert client.get(admin_url(event, "delete")).status_code == 403
    assert client.post(admin_url(event, "delete"), {"post": "yes"}).status_code == 403
    assert client.get(add_url(ProviderEvent)).status_code == 403
    assert ProviderEvent.objects.filter(pk=event.pk).exists()

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(changelist_url(ProviderEvent)).status_code == 200
    assert client.get(admin_url(event, "change")).status_code == 200


def test_admin_index_lists_no_provider_events_for_org_staff(client, world):
    client.force_login(staff(world["alpha"]))
    content = client.get(reverse("admin:index")).content.decode()
    assert changelist_url(ProviderEvent) not in content
    assert changelist_url(type(world["a"]["campaigns.contact"])) in content


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
    "accounts/members/": "accounts.membership",
    "campaigns/contacts/lists/": "campaigns.contactlist",
    "campaigns/contacts/import/": "campaigns.importjob",
    "campaigns/contacts/": "campaigns.contact",
    "campaigns/": "campaigns.campaign",
    "messaging/inbox/": "messaging.conversation",
    "messaging/inbox/media/": "messaging.conversationmessage",
    "consent/": "campaigns.contact",
    "accounts/api-keys/": "accounts.apikey",
    "accounts/webhooks/": "accounts.webhookendpoint",
    "accounts/webhooks/deliveries/": "accounts.webhookdelivery",
    "accounts/test-numbers/": "messaging.testnumber",
}
# Not member views: carriers call these, authenticated by signature or secret, not by session.
# The opt-out link page and tracked links answer anyone holding a signed token.
PUBLIC_PREFIXES = ("messaging/webhooks/", "o/", "messaging/r/")


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


def test_owner_cannot_record_a_carrier_review(client, world):
    """Approval comes from the carriers: an organization's owner cannot approve its own account."""
    owner = staff(world["alpha"])
    client.force_login(owner)
    assert client.get(add_url(CarrierReview)).status_code == 403
