"""The Django admin cannot do what the console forbids (issue 14, item 4).

The admin is for the platform's superusers only (config/admin_site.py): a staff member of an
organization — owner or admin, even holding every model permission — is sent to the admin's login
page by every page of every registered model (the list iterates ``admin.site._registry``, so a
model registered later is covered) and changes nothing. The ledgers (consent, opt-out) and
campaigns are read-only even for superusers; gateway credentials are never shown back; every admin
change is in the audit log.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from campaigns.models import CampaignStatus
from messaging.models import ProviderEvent
from tests.accounts.factories import OrganizationFactory, UserFactory, member
from tests.messaging.factories import tenant_objects

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label_lower)


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
    alpha = OrganizationFactory(name="Alpha商事", slug="alpha")
    bravo = OrganizationFactory(name="Bravo物産", slug="bravo")
    return {
        "alpha": alpha,
        "a": tenant_objects(alpha, "alpha"),
        "b": {**tenant_objects(bravo, "bravo"), **_unscoped_objects("bravo")},
    }


def tenant_staff(organization, role):
    """A staff member of ``organization`` holding every model permission there is."""
    user = member(organization, role, is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    return user


def superuser(**kwargs):
    return UserFactory(is_staff=True, is_superuser=True, **kwargs)


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def snapshot(model):
    return sorted(model._default_manager.values_list("pk", flat=True)), list(model._default_manager.order_by("pk").values())


def assert_sent_to_login(response):
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(reverse("admin:login"))


def test_every_registered_model_has_a_row_in_the_world(world):
    assert {m._meta.label_lower for m in REGISTERED} <= set(world["b"]), "add a row of the new model to the world"


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label_lower)
def test_admin_bypass_tenant_staff_are_refused_every_page(client, world, role, model):
    client.force_login(tenant_staff(world["alpha"], role))
    label = model._meta.label_lower
    before = snapshot(model)
    objects = [world["b"][label]] + ([world["a"][label]] if label in world["a"] else [])
    assert_sent_to_login(client.get(url(model, "changelist")))
    assert_sent_to_login(client.post(url(model, "changelist"), {"action": "delete_selected", "_selected_action": [o.pk for o in objects], "post": "yes"}))
    assert_sent_to_login(client.get(url(model, "add")))
    assert_sent_to_login(client.post(url(model, "add"), {"name": "sneaky", "organization": world["alpha"].pk}))
    for obj in objects:
        for view in ("change", "history", "delete"):
            assert_sent_to_login(client.get(url(model, view, obj.pk)))
        assert_sent_to_login(client.post(url(model, "change", obj.pk), {"name": "hijacked", "role": Role.OWNER}))
        assert_sent_to_login(client.post(url(model, "delete", obj.pk), {"post": "yes"}))
    assert snapshot(model) == before


def test_admin_bypass_index_and_raw_id_lookups_are_refused(client, world):
    client.force_login(tenant_staff(world["alpha"], Role.OWNER))
    assert_sent_to_login(client.get(reverse("admin:index")))
    # the raw-id widget's popup and the autocomplete view list rows by id
    from campaigns.models import Contact

    response = client.get(url(Contact, "changelist"), {"_popup": "1", "_to_field": "id"})
    assert_sent_to_login(response)
    assert "bravo" not in response.content.decode()
    assert_sent_to_login(client.get(reverse("admin:autocomplete"), {"app_label": "campaigns", "model_name": "consent", "field_name": "contact"}))


def test_admin_bypass_owner_cannot_redirect_the_gateway_nor_promote_themselves(client, world):
    gateway, membership = world["a"]["accounts.gatewayaccount"], world["a"]["accounts.membership"]
    owner = tenant_staff(world["alpha"], Role.ADMIN)
    client.force_login(owner)
    client.post(url(type(gateway), "change", gateway.pk), {
        "organization": world["alpha"].pk, "name": gateway.name, "kind": gateway.kind,
        "base_url": "https://attacker.example/", "rate_per_second": 10, "sms_char_limit": 660, "media_hosts": "[]",
    })
    own = owner.memberships.get()
    client.post(url(type(own), "change", own.pk), {"organization": world["alpha"].pk, "user": owner.pk, "role": Role.OWNER})
    gateway.refresh_from_db()
    own.refresh_from_db()
    membership.refresh_from_db()
    assert gateway.base_url == "http://127.0.0.1:8025"
    assert own.role == Role.ADMIN


def test_admin_bypass_inactive_or_plain_staff_superuser_flags_matter(client, world):
    client.force_login(superuser(is_active=False))
    assert client.get(reverse("admin:index")).status_code == 302
    client.force_login(UserFactory(is_staff=True))  # staff without any organization or superuser flag
    assert_sent_to_login(client.get(reverse("admin:index")))


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label_lower)
def test_admin_bypass_superuser_reaches_every_model(client, world, model):
    """The refusals above are the site's, not a broken admin: a superuser gets every page."""
    client.force_login(superuser())
    assert client.get(url(model, "changelist")).status_code == 200
    assert client.get(url(model, "change", world["b"][model._meta.label_lower].pk)).status_code == 200


def _form_data(response, **changes):
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value
    data.update(changes)
    return data


def test_admin_bypass_superuser_gateway_change_is_audited_and_credentials_stay_masked(client, world):
    gateway = world["a"]["accounts.gatewayaccount"]
    root = superuser(username="platform-root")
    client.force_login(root)
    page = client.get(url(type(gateway), "change", gateway.pk))
    content = page.content.decode()
    assert "test-bearer" not in content and "test-client-token" not in content
    assert "credentials" not in page.context["adminform"].form.fields
    response = client.post(url(type(gateway), "change", gateway.pk), _form_data(page, base_url="https://rbm.example.net/"))
    assert response.status_code == 302
    gateway.refresh_from_db()
    assert gateway.base_url == "https://rbm.example.net/"
    assert gateway.credentials["bearer_token"] == "test-bearer"  # untouched by the form
    event = AuditEvent.objects.get(action="admin.changed", target_type="accounts.gatewayaccount")
    assert event.actor_id == root.pk and event.organization_id == world["alpha"].pk
    assert event.target_id == str(gateway.pk)
    assert event.details["values"]["base_url"] == ["http://127.0.0.1:8025", "https://rbm.example.net/"]


def test_admin_bypass_superuser_additions_and_deletions_are_audited(client, world):
    from django_celery_beat.models import CrontabSchedule

    client.force_login(superuser())
    group = world["b"]["auth.group"]
    response = client.post(url(type(group), "delete", group.pk), {"post": "yes"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="admin.deleted", target_type="auth.group", target_id=str(group.pk)).exists()
    schedules = [CrontabSchedule.objects.create(minute=str(m), hour="4") for m in (1, 2)]
    response = client.post(url(CrontabSchedule, "changelist"), {
        "action": "delete_selected", "_selected_action": [s.pk for s in schedules], "post": "yes",
    })
    assert response.status_code == 302
    deleted = set(AuditEvent.objects.filter(action="admin.deleted", target_type="django_celery_beat.crontabschedule")
                  .values_list("target_id", flat=True))
    assert deleted == {str(s.pk) for s in schedules}
    client.post(url(type(group), "add"), {"name": "operators"})
    assert AuditEvent.objects.filter(action="admin.added", target_type="auth.group", target_label="operators").exists()


def test_admin_bypass_superuser_bulk_actions_are_audited(client, world):
    from django_celery_beat.models import PeriodicTask

    task = world["b"]["django_celery_beat.periodictask"]
    client.force_login(superuser())
    response = client.post(url(PeriodicTask, "changelist"), {"action": "disable_tasks", "_selected_action": [task.pk]})
    assert response.status_code == 302
    task.refresh_from_db()
    assert not task.enabled
    event = AuditEvent.objects.get(action="admin.action")
    assert event.target_type == "django_celery_beat.periodictask"
    assert event.details == {"action": "disable_tasks", "ids": [str(task.pk)]}


def test_admin_bypass_ledgers_and_campaigns_are_read_only_for_superusers(client, world):
    consent, contact, campaign = (world["a"][k] for k in ("campaigns.consent", "campaigns.contact", "campaigns.campaign"))
    type(campaign).objects.filter(pk=campaign.pk).update(
        status=CampaignStatus.APPROVED, approved_by=campaign.created_by, approved_at=timezone.now()
    )
    opted_out_at = timezone.now()
    type(contact).objects.filter(pk=contact.pk).update(opted_out_at=opted_out_at, opt_out_method="keyword")
    client.force_login(superuser())
    # consent ledger: no add, change or delete
    assert client.get(url(type(consent), "add")).status_code == 403
    page = client.get(url(type(consent), "change", consent.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(url(type(consent), "change", consent.pk), {"revoked_at_0": "2026-01-01", "revoked_at_1": "00:00"}).status_code == 403
    assert client.post(url(type(consent), "delete", consent.pk), {"post": "yes"}).status_code == 403
    # opt-out: the fields are read-only and the contact cannot be deleted (that would drop its ledger)
    page = client.get(url(type(contact), "change", contact.pk))
    assert "opted_out_at" not in page.context["adminform"].form.fields
    client.post(url(type(contact), "change", contact.pk), _form_data(page, opted_out_at_0="", opted_out_at_1="", opt_out_method=""))
    assert client.post(url(type(contact), "delete", contact.pk), {"post": "yes"}).status_code == 403
    contact.refresh_from_db()
    assert contact.opted_out_at == opted_out_at and contact.opt_out_method == "keyword"
    # an approved campaign cannot be changed here
    before = snapshot(type(campaign))
    assert client.post(url(type(campaign), "change", campaign.pk), {"name": "changed", "sms_text": "x"}).status_code == 403
    assert client.post(url(type(campaign), "delete", campaign.pk), {"post": "yes"}).status_code == 403
    assert snapshot(type(campaign)) == before
    assert consent.__class__.objects.filter(pk=consent.pk, revoked_at__isnull=True).exists()


def test_two_factor_admin_site_signs_in_through_the_console_and_needs_the_second_step(client):
    from tests.accounts.test_two_factor import enrolled, totp_code

    response = client.get(reverse("admin:login") + "?next=/admin/auth/group/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/auth/group/"

    platform = superuser(username="platform-2fa")
    device, _codes = enrolled(platform)
    client.force_login(platform)  # a session that skipped the second step
    assert_sent_to_login(client.get(reverse("admin:index")))

    client.logout()
    client.post(reverse("login"), {"username": "platform-2fa", "password": "correct-horse-battery-staple"})
    client.post(reverse("two_factor_verify"), {"otp_code": totp_code(device, 30)})
    assert client.get(reverse("admin:index")).status_code == 200
