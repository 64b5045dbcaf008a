"""Benchmark the console's heaviest pages on a campaign with 1,000,000 deliveries; prints one JSON line.

The campaign's deliveries are inserted with one INSERT … SELECT from generate_series, its counters
as the engine would have folded them (per minute, channel, metric), and the campaign monitor and
the dashboard are each requested repeatedly through Django's test client by a signed-in owner:
``monitor_ms`` and ``dashboard_ms`` are the median server times. PostgreSQL only.

``redirect_ms`` is the median server time of the short-link redirect (``/s/<token>``, a tracked link
in the SMS text) for people spread over the million deliveries, each a first click (signature check,
one primary-key lookup, one insert); ``redirect_repeat_ms`` the same people clicking again.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from datetime import time as dtime
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Max, Min
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Carrier, CarrierReview, Membership, OfficialAccount, Organization, Role
from campaigns.models import Campaign, CampaignStatus, ContactList
from core.signed_links import short_link_token
from devtools.cleanup import delete_organization
from messaging.models import CampaignCounter, Delivery, Metric


class Command(BaseCommand):
    help = "Median server time of the campaign monitor and the dashboard with 1,000,000 deliveries."

    def add_arguments(self, parser):
        parser.add_argument("--deliveries", type=int, default=1_000_000)
        parser.add_argument("--requests", type=int, default=20)
        parser.add_argument("--keep", action="store_true")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_console needs DATABASE_URL pointing at PostgreSQL.")
        n = options["deliveries"]
        started = time.perf_counter()
        organization, campaign, user = self._fill(n)
        fill_seconds = time.perf_counter() - started

        # Page rendering without a collectstatic run (the manifest storage would need one).
        static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        with override_settings(STORAGES={**settings.STORAGES, "staticfiles": static}):
            results = self._measure(organization, campaign, user, options["requests"])
        results.update({"deliveries": n, "fill_seconds": round(fill_seconds, 1)})
        if not options["keep"]:
            self._cleanup(organization)
        self.stdout.write(json.dumps(results))

    def _measure(self, organization, campaign, user, requests):
        client = Client()
        client.force_login(user)
        session = client.session
        session["organization_id"] = organization.pk
        session.save()
        monitor = reverse("campaigns:monitor", args=[campaign.pk])
        dashboard = reverse("dashboard")
        results = {}
        for name, url in (("monitor_ms", monitor), ("dashboard_ms", dashboard)):
            client.get(url, secure=True)  # warm up
            timings = []
            for _ in range(requests):
                begin = time.perf_counter()
                response = client.get(url, secure=True)
                timings.append((time.perf_counter() - begin) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
            results[name] = round(statistics.median(timings), 1)
        results.update(self._measure_redirect(campaign, requests))
        return results

    def _measure_redirect(self, campaign, requests):
        """Anonymous taps on SMS short links, as phones make them (no session, no login)."""
        client = Client()
        span = Delivery.objects.filter(campaign=campaign).aggregate(low=Min("id"), high=Max("id"))
        low, high = span["low"], span["high"]
        people = random.Random(17).sample(range(low, high + 1), min(requests + 1, high - low + 1))
        results = {}
        for name, rounds in (("redirect_ms", people), ("redirect_repeat_ms", people)):
            timings = []
            for delivery_id in rounds:
                url = f"/s/{short_link_token(delivery_id, 0)}"
                begin = time.perf_counter()
                response = client.get(url, secure=True)
                timings.append((time.perf_counter() - begin) * 1000)
                if response.status_code != 302:
                    raise CommandError(f"{url} answered {response.status_code}")
            results[name] = round(statistics.median(timings[1:]), 1)  # the first warms up
        return results

    def _fill(self, n):
        stamp = int(time.time())
        organization = Organization.objects.create(
            name=f"console bench {stamp}", slug=f"console-bench-{stamp}",
            quiet_hours_start=dtime(0, 0), quiet_hours_end=dtime(0, 0),
        )
        user = get_user_model().objects.create(username=f"console-bench-{stamp}")
        Membership.objects.create(organization=organization, user=user, role=Role.OWNER)
        account = OfficialAccount.objects.create(
            organization=organization, display_name="bench", legal_name="株式会社ベンチ", sms_sender_id="BENCH"
        )
        CarrierReview.objects.create(account=account, carrier=Carrier.DOCOMO, status="approved", decided_at=timezone.now())
        audience = ContactList.objects.create(organization=organization, name="bench")
        campaign = Campaign.objects.create(
            organization=organization, official_account=account, name="1,000,000 recipients",
            classification="transaction", content={"text": "bench"},
            sms_text="bench {{link:https://shop.example.jp/coupon}}", created_by=user,
            status=CampaignStatus.COMPLETED, approved_by=user, approved_at=timezone.now(),
            started_at=timezone.now() - timedelta(minutes=30), finished_at=timezone.now(),
        )
        campaign.audience_lists.add(audience)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_contact (organization_id, phone, name, attributes, opted_out_at, "
                "opt_out_method, created_at, updated_at) SELECT %s, '+8190' || lpad((50000000 + g)::text, 8, '0'), "
                "'', '{}'::jsonb, NULL, '', now(), now() FROM generate_series(0, %s - 1) AS g",
                [organization.pk, n],
            )
            # Channel and status spread as a real campaign ends: 80 % RCS, 20 % SMS; most delivered,
            # many read, a few failed.
            cursor.execute(
                "INSERT INTO messaging_delivery (uuid, organization_id, campaign_id, contact_id, channel, status, "
                "rcs_provider_id, sms_provider_id, error_code, error_reason, fallback_reason, pending_fallback, "
                "attempts, created_at, sent_at, sms_text, classification, client_reference) "
                "SELECT gen_random_uuid(), %s, %s, c.id, CASE WHEN c.id %% 5 = 0 THEN 'sms' ELSE 'rcs' END, "
                "CASE WHEN c.id %% 50 = 0 THEN 50 WHEN c.id %% 3 = 0 THEN 30 ELSE 40 END, '', '', "
                "CASE WHEN c.id %% 50 = 0 THEN '3' ELSE '' END, '', "
                "CASE WHEN c.id %% 5 = 0 THEN 'not_capable' ELSE '' END, FALSE, 1, now(), now() "
                ", '', '', '' FROM campaigns_contact c WHERE c.organization_id = %s",
                [organization.pk, campaign.pk, organization.pk],
            )
            cursor.execute("ANALYZE campaigns_contact")
            cursor.execute("ANALYZE messaging_delivery")
        minute0 = (timezone.now() - timedelta(minutes=30)).replace(second=0, microsecond=0)
        per_minute = n // 30
        rows = []
        for i in range(30):
            minute = minute0 + timedelta(minutes=i)
            for channel, share in (("rcs", 0.8), ("sms", 0.2)):
                sent = int(per_minute * share)
                rows += [
                    CampaignCounter(campaign=campaign, minute=minute, channel=channel, metric=Metric.SENT, count=sent),
                    CampaignCounter(campaign=campaign, minute=minute, channel=channel, metric=Metric.DELIVERED,
                                    count=int(sent * 0.97)),
                    CampaignCounter(campaign=campaign, minute=minute, channel=channel, metric=Metric.READ,
                                    count=int(sent * 0.6) if channel == "rcs" else 0),
                ]
            rows.append(CampaignCounter(campaign=campaign, minute=minute, channel="sms", metric=Metric.FELL_BACK,
                                        detail="not_capable", count=int(per_minute * 0.2)))
            rows.append(CampaignCounter(campaign=campaign, minute=minute, channel="sms", metric=Metric.FAILED,
                                        detail="3", count=per_minute // 50))
        rows.append(CampaignCounter(campaign=campaign, minute=minute0, channel="", metric=Metric.TARGETED, count=n))
        CampaignCounter.objects.bulk_create(rows)
        return organization, campaign, user

    def _cleanup(self, organization):
        with connection.cursor() as cursor:
            for table in ("messaging_campaigncounter", "messaging_counterdelta", "messaging_campaignengagement"):
                cursor.execute(
                    f"DELETE FROM {table} WHERE campaign_id IN "
                    "(SELECT id FROM campaigns_campaign WHERE organization_id = %s)", [organization.pk]
                )
            cursor.execute("DELETE FROM messaging_delivery WHERE organization_id = %s", [organization.pk])
            cursor.execute("DELETE FROM campaigns_contact WHERE organization_id = %s", [organization.pk])
        users = list(organization.memberships.values_list("user_id", flat=True))
        delete_organization(organization)
        get_user_model().objects.filter(id__in=users).delete()
