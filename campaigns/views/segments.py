"""The segment builder: saved segments, and a page that adds and removes condition rows with HTMX
and shows a live count as the conditions change.

The rows are posted as ``rows`` (one index per row, in page order) and ``c-<index>-<part>`` inputs;
checking lives in campaigns.segments, counting in messaging.segments (the freeze's own filter).
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from campaigns import segments as rules
from campaigns.models import Campaign, ContactList, CustomField, Segment, SegmentMatch
from campaigns.segments import SegmentInvalid, conditions_clean, segment_save
from messaging.segments import condition_q, segment_contacts

PART_NAMES = ("type", "field", "op", "value", "list", "action", "campaign", "days")


def _posted_rows(data) -> list[tuple[str, dict]]:
    rows = []
    for index in data.getlist("rows"):
        if index.isdigit():
            rows.append((index, {part: data.get(f"c-{index}-{part}", "") for part in PART_NAMES}))
    return rows


def _choices(organization):
    return {
        "fields": list(CustomField.objects.filter(organization=organization)),
        "lists": list(ContactList.objects.filter(organization=organization).order_by("name")),
        "campaigns": list(Campaign.objects.filter(organization=organization, parent__isnull=True)
                          .order_by("-created_at").only("id", "name")[:200]),
        "condition_types": rules.CONDITION_TYPES,
        "list_ops": rules.LIST_OPS.items(),
        "consent_ops": rules.CONSENT_OPS.items(),
        "opted_out_ops": rules.OPTED_OUT_OPS.items(),
        "carrier_ops": rules.CARRIER_OPS.items(),
        "carrier_choices": rules.CARRIER_CHOICES,
        "created_ops": rules.CREATED_OPS.items(),
        "engagement_actions": rules.ENGAGEMENT_ACTIONS.items(),
        "engagement_ops": rules.ENGAGEMENT_OPS.items(),
    }


def _row_context(index, values, fields, errors=()):
    """What one row shows: its values and, for a field condition, the field's comparisons and widget."""
    values = {**values, "type": values.get("type") or "field"}
    field = next((f for f in fields if f.key == values.get("field")), None)
    if values["type"] == "field" and field is None and fields:
        field = fields[0]
        values["field"] = field.key
    ops = [(op, rules.FIELD_OPS[op]) for op in rules.OPS_BY_KIND[field.kind]] if field else []
    if ops and values.get("op") not in dict(ops):
        values["op"] = ops[0][0]
    return {"index": index, "values": values, "field": field, "field_ops": ops, "errors": errors,
            "valueless": values.get("op") in rules.VALUELESS_OPS}


def _stored_as_posted(condition) -> dict:
    """A saved condition in the shape the row inputs post."""
    values = {part: condition.get(part, "") for part in PART_NAMES}
    for part in ("value", "list", "campaign", "days"):
        values[part] = "" if values[part] is None else str(values[part])
    return values


def _counts(organization, match, rows):
    cleaned, errors = conditions_clean(organization.id, [values for _index, values in rows])
    contacts = segment_contacts(organization.id, match, cleaned)
    total = contacts.count()
    reachable = contacts.filter(rules_reachable()).count() if total else 0
    return {"total": total, "reachable": reachable, "unfinished": len(errors)}


def rules_reachable():
    """Who a promotion could reach: not opted out and holding an active consent (the freeze's rule)."""
    return condition_q({"type": "opted_out", "op": "no"}) & condition_q({"type": "consent", "op": "active"})


@member_required("view")
def segment_index(request):
    segments = Segment.objects.filter(organization=request.organization)
    return render(request, "contacts/segments.html", {"segments": segments})


def _builder(request, segment):
    fields = list(CustomField.objects.filter(organization=request.organization))
    if request.method == "POST":
        segment.name = request.POST.get("name", "")
        segment.match = request.POST.get("match", SegmentMatch.ALL)
        rows = _posted_rows(request.POST)
        try:
            segment_save(segment, [values for _index, values in rows], user=request.user)
        except SegmentInvalid as error:
            row_errors = error.errors.get("conditions", {})
            page_errors = error.errors
        else:
            messages.success(request, _("The segment “%(name)s” was saved.") % {"name": segment.name})
            return redirect("contacts:segments")
    else:
        rows = [(str(i), _stored_as_posted(c)) for i, c in enumerate(segment.conditions)]
        row_errors, page_errors = {}, {}
    context = {
        "segment": segment,
        "rows": [_row_context(index, values, fields, row_errors.get(position, ()))
                 for position, (index, values) in enumerate(rows)],
        "next_index": max([int(index) for index, _values in rows] + [-1]) + 1,
        "name_errors": page_errors.get("name", ()),
        "counts": _counts(request.organization, segment.match, rows),
        "matches": SegmentMatch.choices,
        **_choices(request.organization),
    }
    return render(request, "contacts/segment_builder.html", context, status=422 if page_errors else 200)


@member_required("compose")
def segment_create(request):
    return _builder(request, Segment(organization=request.organization))


@member_required("compose")
def segment_edit(request, pk):
    return _builder(request, get_object_or_404(Segment, pk=pk, organization=request.organization))


@require_POST
@member_required("compose")
def segment_delete(request, pk):
    segment = get_object_or_404(Segment, pk=pk, organization=request.organization)
    if segment.campaigns.exists() or segment.excluded_from_campaigns.exists():
        messages.error(request, _("This segment is a campaign's audience or exclusion and cannot be deleted."))
    else:
        segment.delete()
        messages.success(request, _("The segment was deleted."))
    return redirect("contacts:segments")


@require_POST
@member_required("compose")
def segment_row(request):
    """A condition row: a new one (``add``) at the next index, or row ``redraw`` re-drawn after its
    kind, field or comparison changed."""
    fields = list(CustomField.objects.filter(organization=request.organization))
    rows = _posted_rows(request.POST)
    if request.POST.get("add"):
        index = str(max([int(index) for index, _values in rows] + [-1]) + 1)
        values = {"type": request.POST.get("add_type") or "field"}
    else:
        # A row inside the form posts the whole form (htmx adds the enclosing form's values): the
        # row to re-draw is the one named by ``redraw``.
        wanted = request.POST.get("redraw", "")
        index, values = next(((i, v) for i, v in rows if i == wanted), rows[0] if rows else ("0", {}))
    context = {"row": _row_context(index, values, fields), **_choices(request.organization)}
    response = render(request, "contacts/segment_builder.html#condition-row", context)
    response["HX-Trigger-After-Settle"] = "segment-changed"
    return response


@require_POST
@member_required("view")
def segment_count(request):
    """The live count region: the contacts matching the finished conditions."""
    counts = _counts(request.organization, request.POST.get("match", SegmentMatch.ALL), _posted_rows(request.POST))
    return render(request, "contacts/segment_builder.html#segment-count", {"counts": counts})

