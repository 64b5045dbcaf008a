"""Benchmark segments at scale: N contacts (default 1,000,000) with typed custom fields, consent and
click history, inserted by PostgreSQL itself (generate_series, as devtools.harness does); then the
live count of three typical segments (median of 3, after one warm-up) and the audience freeze of a
segment against a list of the same size. Prints one JSON line:

    {"contacts", "count_ms": {segment: ms}, "freeze_list_s", "freeze_segment_s", "frozen_list", "frozen_segment"}

Runs in a throw-away organization, removed afterwards (``--keep`` keeps it).
"""

import json
import statistics
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import OfficialAccount, Organization
from campaigns.models import Campaign, CampaignStatus, ContactList, CustomField, FieldKind, Segment
from campaigns.segments import segment_save
from devtools.harness import bench_cleanup, vacuum_analyze
from messaging.engine.freeze import audience_freeze
from messaging.models import Delivery
from messaging.segments import segment_count

RANKS = ["ゴールド", "シルバー", "ブロンズ", "一般"]
SEGMENTS = {
    "gold": ("all", [{"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"}]),
    "gold_clicked_30d": ("all", [
        {"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"},
        {"type": "engagement", "action": "clicked", "op": "did", "campaign": None, "days": 30},
    ]),
    "docomo_points_over_5000_reachable": ("all", [
        {"type": "carrier", "op": "eq", "value": "docomo"},
        {"type": "field", "field": "points", "op": "gt", "value": "5000"},
        {"type": "opted_out", "op": "no"},
        {"type": "consent", "op": "active"},
    ]),
}


class Command(BaseCommand):
    help = "Count three typical segments over 1,000,000 contacts and freeze a segment against a list; print JSON."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=1_000_000)
        parser.add_argument("--no-freeze", action="store_true", help="only the counts")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark organization")

    def handle(self, *args, contacts, no_freeze, keep, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_segments needs DATABASE_URL (PostgreSQL).")
        stamp = f"{int(time.time())}"
        organization = Organization.objects.create(name=f"bench_segments {stamp}", slug=f"bench-segments-{stamp}")
        try:
            result = self._run(organization, contacts, no_freeze)
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            self.stdout.flush()
        finally:
            if not keep:
                self._cleanup(organization)

    def _cleanup(self, organization):
        """The million-row tables emptied with plain SQL first (the ORM's cascade would load them)."""
        with connection.cursor() as cursor:
            for sql in (
                "DELETE FROM messaging_delivery WHERE organization_id = %s",
                "DELETE FROM messaging_campaignengagement WHERE campaign_id IN "
                "(SELECT id FROM campaigns_campaign WHERE organization_id = %s)",
                "DELETE FROM campaigns_consent WHERE organization_id = %s",
                "DELETE FROM campaigns_contactlistmembership WHERE contact_list_id IN "
                "(SELECT id FROM campaigns_contactlist WHERE organization_id = %s)",
                "DELETE FROM campaigns_contact WHERE organization_id = %s",
            ):
                cursor.execute(sql, [organization.pk])
        bench_cleanup(organization)

    def _populate(self, organization, n):
        user, _created = get_user_model().objects.get_or_create(username="bench-segments")
        account = OfficialAccount.objects.create(organization=organization, display_name="bench",
                                                 legal_name="株式会社ベンチ", sms_sender_id="BENCH")
        for key, label, kind, choices in (("rank", "会員ランク", FieldKind.CHOICE, RANKS),
                                          ("points", "ポイント", FieldKind.NUMBER, []),
                                          ("birthday", "誕生日", FieldKind.DATE, []),
                                          ("store", "店舗", FieldKind.TEXT, [])):
            CustomField.objects.create(organization=organization, key=key, label=label, kind=kind, choices=choices)
        everyone = ContactList.objects.create(organization=organization, name="everyone")
        earlier = Campaign.objects.create(
            organization=organization, official_account=account, name="earlier", classification="transaction",
            content={"text": "x"}, sms_text="x", created_by=user, status=CampaignStatus.COMPLETED,
            approved_by=user, approved_at=timezone.now(),
        )
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_contact (organization_id, phone, name, attributes, opted_out_at, opt_out_method, "
                "carrier, created_at, updated_at) "
                "SELECT %s, '+8190' || lpad((50000000 + g)::text, 8, '0'), 'ベンチ', "
                "jsonb_build_object('rank', (%s::text[])[1 + g %% 4], 'points', (g::bigint * 7919) %% 10000, "
                "'birthday', to_char(date '1960-01-01' + (g %% 18000), 'YYYY-MM-DD'), 'store', (g %% 120) || '号店'), "
                "CASE WHEN g %% 100 = 0 THEN now() END, CASE WHEN g %% 100 = 0 THEN 'keyword' ELSE '' END, "
                "(ARRAY['docomo','au','softbank','rakuten',''])[1 + g %% 5], "
                "now() - (g %% 365) * interval '1 day', now() FROM generate_series(0, %s - 1) AS g",
                [organization.pk, RANKS, n],
            )
            cursor.execute(
                "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
                "SELECT %s, id, now() FROM campaigns_contact WHERE organization_id = %s",
                [everyone.pk, organization.pk],
            )
            cursor.execute(
                "INSERT INTO campaigns_consent (organization_id, contact_id, granted_at, method, source, "
                "wording_version, evidence, revoke_method, created_at) "
                "SELECT %s, id, now() - interval '30 days', 'web_form', 'bench', 'v1', '', '', now() "
                "FROM campaigns_contact WHERE organization_id = %s AND id %% 10 <> 0",
                [organization.pk, organization.pk],
            )
            # One person in nineteen clicked the earlier campaign, spread over the last 60 days.
            cursor.execute(
                "INSERT INTO messaging_campaignengagement (campaign_id, contact_id, kind, created_at) "
                "SELECT %s, id, 'clicked', now() - (id %% 60) * interval '1 day' "
                "FROM campaigns_contact WHERE organization_id = %s AND id %% 19 = 0",
                [earlier.pk, organization.pk],
            )
        vacuum_analyze(["campaigns_contact", "campaigns_contactlistmembership", "campaigns_consent",
                        "messaging_campaignengagement"])
        return user, account, everyone, time.perf_counter() - started

    def _run(self, organization, n, no_freeze):
        user, account, everyone, populate_s = self._populate(organization, n)
        counts, count_ms = {}, {}
        for name, (match, conditions) in SEGMENTS.items():
            segment = segment_save(Segment(organization=organization, name=name, match=match), conditions)
            segment_count(organization.id, segment.match, segment.conditions)  # warm-up
            runs = []
            for _run in range(3):
                started = time.perf_counter()
                counts[name] = segment_count(organization.id, segment.match, segment.conditions)
                runs.append((time.perf_counter() - started) * 1000)
            count_ms[name] = round(statistics.median(runs), 1)
        result = {"contacts": n, "populate_s": round(populate_s, 1), "count_ms": count_ms, "matches": counts}
        if no_freeze:
            return result
        everyone_segment = segment_save(Segment(organization=organization, name="rank set", match="all"),
                                        [{"type": "field", "field": "rank", "op": "set"}])
        for label, add in (("list", lambda c: c.audience_lists.add(everyone)),
                           ("segment", lambda c: c.audience_segments.add(everyone_segment))):
            campaign = Campaign.objects.create(
                organization=organization, official_account=account, name=f"freeze {label}",
                classification="transaction", content={"text": "x"}, sms_text="x", created_by=user,
                status=CampaignStatus.RUNNING, approved_by=user, approved_at=timezone.now(),
                started_at=timezone.now(),
            )
            add(campaign)
            started = time.perf_counter()
            audience_freeze(campaign)
            result[f"freeze_{label}_s"] = round(time.perf_counter() - started, 2)
            result[f"frozen_{label}"] = Delivery.objects.filter(campaign=campaign).count()
        return result
