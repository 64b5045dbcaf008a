"""Who a campaign reaches: the audience lists and segments minus the exclusion lists and segments,
and — for promotions — minus opted-out contacts and contacts without an active consent record.

A segment arrives here as a ready filter (``include_filter`` / ``exclude_filter``, built by
``messaging.segments``, which reads engagement): it only chooses candidates, and the same
eligibility applies to them as to anyone on a list."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, Subquery

from campaigns.models import Classification, Consent, Contact, ContactListMembership


def candidates(organization_id, include_list_ids, exclude_list_ids, include_filter=None, exclude_filter=None):
    """Contacts in any included list or segment and in no excluded list or segment (before
    compliance filters). ``include_filter``/``exclude_filter``: segments as one Q each, or None."""
    included = Q(pk__in=[])
    if include_list_ids:
        in_lists = ContactListMembership.objects.filter(
            contact_id=OuterRef("pk"), contact_list_id__in=include_list_ids
        )
        included = Q(Exists(in_lists))
    if include_filter is not None:
        included = include_filter if not include_list_ids else (included | include_filter)
    queryset = Contact.objects.filter(organization_id=organization_id).filter(included)
    if exclude_list_ids:
        excluded = ContactListMembership.objects.filter(
            contact_id=OuterRef("pk"), contact_list_id__in=exclude_list_ids
        )
        queryset = queryset.exclude(Exists(excluded))
    if exclude_filter is not None:
        # NOT EXISTS on the contact itself, not exclude(filter): the excluded are exactly the people
        # the segment counts (a NULL comparison inside it excludes nobody), and PostgreSQL plans it
        # as an anti-join rather than a NOT IN over a million ids.
        matching = Contact.objects.filter(pk=OuterRef("pk")).filter(exclude_filter)
        queryset = queryset.filter(~Exists(matching))
    return queryset


def has_active_consent():
    return Exists(Consent.objects.filter(contact_id=OuterRef("pk"), revoked_at__isnull=True))


def eligibility_filter(classification) -> Q:
    """What a promotion additionally requires of a contact. Transactional messages are exempt."""
    if classification == Classification.PROMOTION:
        return Q(opted_out_at__isnull=True) & Q(has_consent=True)
    return Q()


def latest_active_consent():
    """The consent a promotional delivery relies on: the contact's most recent one not revoked."""
    return Subquery(
        Consent.objects.filter(contact_id=OuterRef("pk"), revoked_at__isnull=True)
        .order_by("-granted_at", "-id")
        .values("id")[:1]
    )


def annotated_candidates(organization_id, include_list_ids, exclude_list_ids, include_filter=None, exclude_filter=None):
    return candidates(organization_id, include_list_ids, exclude_list_ids, include_filter, exclude_filter).annotate(
        has_consent=has_active_consent(), active_consent_id=latest_active_consent()
    )


def audience_count(organization, classification, include_list_ids, exclude_list_ids, include_filter=None,
                   exclude_filter=None) -> dict:
    """Live recipient count for the composer: total, eligible, and why the rest are left out."""
    include_list_ids = list(include_list_ids or [])
    if not include_list_ids and include_filter is None:
        return {"total": 0, "eligible": 0, "opted_out": 0, "no_consent": 0}
    base = annotated_candidates(getattr(organization, "id", organization), include_list_ids, exclude_list_ids or [],
                                include_filter, exclude_filter)
    total = base.count()
    if classification != Classification.PROMOTION:
        return {"total": total, "eligible": total, "opted_out": 0, "no_consent": 0}
    opted_out = base.filter(opted_out_at__isnull=False).count()
    no_consent = base.filter(opted_out_at__isnull=True, has_consent=False).count()
    return {"total": total, "eligible": total - opted_out - no_consent, "opted_out": opted_out, "no_consent": no_consent}


def audience_sample(organization, classification, include_list_ids=(), exclude_list_ids=(), limit=20,
                    include_filter=None, exclude_filter=None) -> list:
    """The first contacts (by id) the send would reach: whom the composer's preview shows.

    The same candidates and the same eligibility as the launch's freeze (``annotated_candidates``,
    ``eligibility_filter``): a promotion leaves out opted-out contacts and those without an active
    consent. Without lists chosen, the organization's contacts stand in, filtered the same way;
    opted-out people are left out of the preview for every classification — a transactional
    message still reaches them, but they should not be the face of a campaign.
    """
    organization_id = getattr(organization, "id", organization)
    include_list_ids = list(include_list_ids or [])
    if include_list_ids or include_filter is not None:
        contacts = annotated_candidates(organization_id, include_list_ids, list(exclude_list_ids or []),
                                        include_filter, exclude_filter)
    else:
        contacts = Contact.objects.filter(organization_id=organization_id).annotate(has_consent=has_active_consent())
    contacts = contacts.filter(eligibility_filter(classification), opted_out_at__isnull=True)
    return list(contacts.order_by("id")[:limit])
