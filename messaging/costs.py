"""What messages cost: the estimate before a campaign's launch, the actual cost of what it has sent,
and the monthly usage of an organization and its official accounts.

Every amount comes from ``accounts.pricing.message_cost`` with the gateway account's price table:
+Message per message through the account's RCS gateway (its SMS gateway when that one lets the
provider fall back: the provider sends both), SMS per segment through the gateway the leg went
through (the backup's prices for legs the failover sent there). Amounts are ``Decimal`` yen.

- The **estimate** looks at the audience (up to ``ESTIMATE_SAMPLE`` people, scaled to the whole
  audience): a number the capability cache (``core.throttle``, what the engine learnt in the last
  hour) knows as +Message-capable on a carrier that approved the account counts as +Message; every
  other number counts as SMS — unknown numbers too, so the estimate errs on the SMS side and says
  how many were unknown. SMS segments are those of the SMS text as each person would be sent it
  (``messaging.engine.context.sms_text_for``, measured by ``core.sms_text``).
- The **actual** cost and the **usage** read the deliveries a gateway accepted (``sent_at`` set)
  by channel, carrier and SMS segments (``Delivery.sms_segments``, written with the send's record).
"""

from __future__ import annotations

import json
import time as clock
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce, Greatest

from accounts.models import OfficialAccount
from accounts.pricing import CARRIER_LABELS, PriceTable, message_cost, price_tables
from campaigns.audience import annotated_candidates, eligibility_filter
from campaigns.models import Campaign
from core import throttle
from core.carriers import carrier_approved
from core.sms_text import measure_sms
from messaging.engine.context import Row, context_for_campaign, sms_text_for
from messaging.models import Channel, Delivery

ESTIMATE_SAMPLE = 10_000
RCS, SMS = Channel.RCS.value, Channel.SMS.value
_CARRIER_ORDER = {carrier: index for index, carrier in enumerate(CARRIER_LABELS)}


def _line_order(line) -> tuple:
    """+Message before SMS, carriers in the price table's order (any carrier, docomo, au, …)."""
    return (line.channel != RCS, _CARRIER_ORDER.get(line.carrier, len(_CARRIER_ORDER)), line.carrier)


@dataclass
class CostLine:
    """Messages on one channel to one carrier, and what they cost; ``unpriced``: how many of them no
    price applies to (not in ``cost``)."""

    channel: str
    carrier: str
    messages: int = 0
    segments: int = 0
    cost: Decimal = Decimal("0")
    unpriced: int = 0

    def add(self, messages: int, segments: int, cost: Decimal | None) -> None:
        self.messages += messages
        self.segments += segments if self.channel == SMS else 0
        if cost is None:
            self.unpriced += messages
        else:
            self.cost += cost

    @property
    def carrier_label(self):
        return CARRIER_LABELS.get(self.carrier) if self.carrier else CARRIER_LABELS[""]

    @property
    def channel_label(self):
        return Channel(self.channel).label


@dataclass
class CostSummary:
    lines: list[CostLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal("0"))

    @property
    def unpriced(self) -> list[CostLine]:
        """Lines with messages no price applies to: those are not in ``total``."""
        return [line for line in self.lines if line.unpriced]

    def channel_messages(self, channel: str) -> int:
        return sum(line.messages for line in self.lines if line.channel == channel)

    @property
    def rcs_messages(self) -> int:
        return self.channel_messages(RCS)

    @property
    def sms_messages(self) -> int:
        return self.channel_messages(SMS)

    @property
    def sms_segments(self) -> int:
        return sum(max(line.segments, line.messages) for line in self.lines if line.channel == SMS)

    @property
    def rcs_share_percent(self) -> float:
        total = self.rcs_messages + self.sms_messages
        return round(100.0 * self.rcs_messages / total, 1) if total else 0.0


@dataclass
class CostEstimate(CostSummary):
    audience: int = 0
    examined: int = 0  # people looked at (all of them, or the sample)
    unknown: int = 0  # of those, numbers the capability cache did not know (counted as SMS)
    segments_per_sms: tuple[int, int] = (0, 0)  # fewest and most segments of one person's SMS

    @property
    def sampled(self) -> bool:
        return self.examined < self.audience

    @property
    def unknown_percent(self) -> float:
        return round(100.0 * self.unknown / self.examined, 1) if self.examined else 0.0


def _rcs_gateway_id(account: OfficialAccount) -> int | None:
    """Whose +Message prices apply: the provider's when it falls back itself, else the RCS gateway's."""
    if account.sms_gateway_id and account.sms_gateway and account.sms_gateway.provider_fallback:
        return account.sms_gateway_id
    return account.rcs_gateway_id


def _priced_line(tables: dict[int, PriceTable], gateway_id, channel, carrier, messages, segments) -> CostLine:
    line = CostLine(channel, carrier)
    line.add(messages, segments, message_cost(tables.get(gateway_id), channel, carrier, messages, segments))
    return line


def campaign_cost_estimate(campaign: Campaign, include_ids, exclude_ids, audience: int) -> CostEstimate:
    """The estimated cost of sending ``campaign`` to its ``audience`` eligible people (see the module)."""
    estimate = CostEstimate(audience=audience)
    if not audience:
        return estimate
    account = campaign.official_account
    ctx = context_for_campaign(campaign)
    people = list(
        annotated_candidates(campaign.organization_id, include_ids, exclude_ids)
        .filter(eligibility_filter(campaign.classification))
        .order_by("id")
        .values_list("id", "phone", "name", "attributes")[:ESTIMATE_SAMPLE]
    )
    estimate.examined = len(people)
    if not people:
        return estimate
    known = {}
    if account.rcs_gateway_id:
        known = throttle.cached_capability_answers(account.rcs_gateway_id, sorted({phone for _id, phone, _n, _a in people}))
    approved = account.approved_carriers
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    fewest = most = None
    for contact_id, phone, name, attributes in people:
        answer = known.get(phone)
        if answer is None:
            estimate.unknown += 1
            capable, carrier = False, ""
        else:
            capable, carrier = answer
        if capable and account.rcs_gateway_id and carrier_approved(carrier, approved):
            tally[(RCS, carrier)][0] += 1
            continue
        row = Row(id=0, uuid=str(uuid.uuid4()), contact_id=contact_id, phone=phone, name=name,
                  attributes=attributes or {}, opted_out=False, channel=SMS, pending_fallback=False)
        segments = max(1, measure_sms(sms_text_for(ctx, row)).segments)
        fewest = segments if fewest is None else min(fewest, segments)
        most = segments if most is None else max(most, segments)
        tally[(SMS, carrier)][0] += 1
        tally[(SMS, carrier)][1] += segments
    estimate.segments_per_sms = (fewest or 0, most or 0)
    scale = Decimal(audience) / Decimal(len(people))
    tables = price_tables([_rcs_gateway_id(account), account.sms_gateway_id])
    ordered = sorted(tally.items(), key=lambda item: _line_order(CostLine(*item[0])))
    for (channel, carrier), (messages, segments) in ordered:
        gateway_id = _rcs_gateway_id(account) if channel == RCS else account.sms_gateway_id
        estimate.lines.append(
            _priced_line(tables, gateway_id, channel, carrier, _scaled(messages, scale), _scaled(segments, scale))
        )
    return estimate


def _scaled(count: int, scale: Decimal) -> int:
    return int((Decimal(count) * scale).to_integral_value())


def _sent_deliveries():
    return Delivery.objects.filter(sent_at__isnull=False).exclude(channel="")


def _priced(groups, accounts: dict[int, OfficialAccount]) -> dict[int | None, list[CostLine]]:
    """Cost lines per official account from rows of (account id, channel, carrier, SMS gateway id,
    messages, segments), each priced with the table of the gateway it went through."""
    gateway_ids = set()
    for account in accounts.values():
        gateway_ids.update({_rcs_gateway_id(account), account.sms_gateway_id})
    gateway_ids.update(group["sms_gateway_id"] for group in groups)
    tables = price_tables(gateway_ids)
    merged: dict[int | None, dict[tuple[str, str], CostLine]] = defaultdict(dict)
    for group in groups:
        account = accounts.get(group["account_id"])
        channel, carrier = group["channel"], group["carrier"] or ""
        if channel == RCS:
            gateway_id = _rcs_gateway_id(account) if account else None
        else:
            gateway_id = group["sms_gateway_id"] or (account.sms_gateway_id if account else None)
        messages, segments = group["messages"], group["segments"] or 0
        line = merged[group["account_id"]].setdefault((channel, carrier), CostLine(channel, carrier))
        line.add(messages, segments, message_cost(tables.get(gateway_id), channel, carrier, messages, segments))
    return {key: sorted(lines.values(), key=_line_order) for key, lines in merged.items()}


def _grouped(queryset, account_expression):
    return list(
        queryset.annotate(account_id=account_expression)
        .values("account_id", "channel", "carrier", "sms_gateway_id")
        .annotate(messages=Count("id"), segments=Sum(Greatest(F("sms_segments"), 1)))
        .order_by()
    )


def campaign_actual_cost(campaign: Campaign, max_age: int = 0) -> CostSummary:
    """What the campaign's messages accepted by a gateway so far cost.

    It reads every sent delivery of the campaign (about 2 s at 1,000,000): with ``max_age`` the
    result is shared for that many seconds by every viewer and process (Redis; in the process on
    the embedded default), so a polled monitor costs one such query per campaign and period."""
    key = f"pm:cost:{campaign.pk}:{campaign.created_at.timestamp():.6f}"
    if max_age:
        cached = _cache_get(key)
        if cached is not None:
            return cached
    queryset = _sent_deliveries().filter(campaign=campaign)
    groups = _grouped(queryset, F("campaign__official_account_id"))
    account = OfficialAccount.objects.select_related("sms_gateway").get(pk=campaign.official_account_id)
    summary = CostSummary(lines=_priced(groups, {account.pk: account}).get(account.pk, []))
    if max_age:
        _cache_set(key, summary, max_age)
    return summary


_local_costs: dict[str, tuple[float, str]] = {}


def _cache_get(key: str) -> CostSummary | None:
    client = throttle.redis_client()
    if client is not None:
        value = client.get(key)
    else:
        expires, value = _local_costs.get(key, (0.0, None))
        value = value if expires > clock.time() else None
    if value is None:
        return None
    return CostSummary(lines=[
        CostLine(line["channel"], line["carrier"], line["messages"], line["segments"], Decimal(line["cost"]),
                 line["unpriced"])
        for line in json.loads(value)
    ])


def _cache_set(key: str, summary: CostSummary, max_age: int) -> None:
    value = json.dumps([
        {"channel": line.channel, "carrier": line.carrier, "messages": line.messages, "segments": line.segments,
         "cost": str(line.cost), "unpriced": line.unpriced}
        for line in summary.lines
    ])
    client = throttle.redis_client()
    if client is not None:
        client.set(key, value, ex=max_age)
        return
    if len(_local_costs) > 1000:
        _local_costs.clear()
    _local_costs[key] = (clock.time() + max_age, value)


@dataclass
class AccountUsage(CostSummary):
    account: OfficialAccount | None = None


@dataclass
class MonthUsage:
    month: date
    accounts: list[AccountUsage]
    organization: CostSummary


def monthly_usage(organization, month: date, tz, official_account_id: int | None = None) -> MonthUsage:
    """Messages and cost by official account, channel and carrier for one month (in ``tz``): campaigns'
    and single messages' deliveries that a gateway accepted in that month."""
    start = datetime.combine(month.replace(day=1), time.min, tzinfo=tz)
    next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    end = datetime.combine(next_month, time.min, tzinfo=tz)
    queryset = _sent_deliveries().filter(organization=organization, sent_at__gte=start, sent_at__lt=end)
    account_expression = Coalesce(F("official_account_id"), F("campaign__official_account_id"))
    if official_account_id:
        queryset = queryset.annotate(account_ref=account_expression).filter(account_ref=official_account_id)
    groups = _grouped(queryset, account_expression)
    accounts = {
        account.pk: account
        for account in OfficialAccount.objects.filter(organization=organization).select_related("sms_gateway")
    }
    priced = _priced(groups, accounts)
    usage = []
    org_lines: dict[tuple[str, str], CostLine] = {}
    for account_id, lines in priced.items():
        usage.append(AccountUsage(lines=lines, account=accounts.get(account_id)))
        for line in lines:
            total = org_lines.setdefault((line.channel, line.carrier), CostLine(line.channel, line.carrier))
            total.messages += line.messages
            total.segments += line.segments
            total.unpriced += line.unpriced
            total.cost += line.cost
    usage.sort(key=lambda item: item.account.display_name if item.account else "")
    return MonthUsage(
        month=month.replace(day=1),
        accounts=usage,
        organization=CostSummary(lines=sorted(org_lines.values(), key=_line_order)),
    )
