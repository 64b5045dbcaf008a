"""The contact upsert: how contacts are created or updated in bulk by mobile number, one service for
the console's import (``campaigns.imports``) and the API's bulk upsert (``api.contacts``).

Set-based, whatever the number of rows: one SELECT of the contacts that already exist, then bulk
INSERT … ON CONFLICT for the contacts, the list memberships and the consent records, in batches of
``UPSERT_BATCH`` rows (the import hands over chunks of that size, so each is one statement).

For a contact that already exists:

- an empty or missing name keeps the stored name: a blank spreadsheet cell, or an API row without a
  name, never erases a name already known (rename a contact one by one to change it);
- the row's attributes are merged over the stored ones (its keys win, the others stay);
- a consent record is added unless the contact already holds one given at the same time for the
  same wording version, so importing the same file twice adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from campaigns.models import Consent, Contact, ContactListMembership

UPSERT_BATCH = 2000


@dataclass
class ContactRow:
    """One validated row: a normalized mobile number (unique among the rows of one call), a name
    (empty or None: keep the stored one), attributes to merge, and the fields of a consent record."""

    phone: str
    name: str | None = None
    attributes: dict = field(default_factory=dict)
    consent: dict | None = None


@dataclass
class UpsertCounts:
    created: int
    updated: int


def contacts_upsert(organization_id: int, rows: list[ContactRow], contact_list_id: int | None = None) -> UpsertCounts:
    """Create or update the contacts of ``rows`` in one transaction, add them to the list if one is
    given, and record their consent; answer how many were created and how many updated."""
    if not rows:
        return UpsertCounts(created=0, updated=0)
    phones = [row.phone for row in rows]
    with transaction.atomic():
        existing = {
            phone: (name, attributes)
            for phone, name, attributes in Contact.objects.filter(
                organization_id=organization_id, phone__in=phones
            ).values_list("phone", "name", "attributes")
        }
        contacts = []
        for row in rows:
            old_name, old_attributes = existing.get(row.phone, ("", {}))
            contacts.append(
                Contact(
                    organization_id=organization_id,
                    phone=row.phone,
                    name=row.name or old_name,
                    attributes={**(old_attributes or {}), **row.attributes},
                )
            )
        Contact.objects.bulk_create(
            contacts,
            update_conflicts=True,
            unique_fields=["organization", "phone"],
            update_fields=["name", "attributes", "updated_at"],
            batch_size=UPSERT_BATCH,
        )
        if any(contact.pk is None for contact in contacts):  # backends that do not return ids from an upsert
            ids = dict(Contact.objects.filter(organization_id=organization_id, phone__in=phones).values_list("phone", "id"))
            for contact in contacts:
                contact.pk = contact.id = ids[contact.phone]
        if contact_list_id is not None:
            ContactListMembership.objects.bulk_create(
                [ContactListMembership(contact_list_id=contact_list_id, contact_id=contact.pk) for contact in contacts],
                ignore_conflicts=True,
                batch_size=UPSERT_BATCH,
            )
        with_consent = [(contact, row.consent) for contact, row in zip(contacts, rows, strict=True) if row.consent]
        if with_consent:
            # Only contacts that existed before this call can already hold these consent records.
            earlier = [contact.pk for contact, _consent in with_consent if contact.phone in existing]
            known = set(
                Consent.objects.filter(contact_id__in=earlier).values_list("contact_id", "granted_at", "wording_version")
            ) if earlier else set()
            Consent.objects.bulk_create(
                [
                    Consent(organization_id=organization_id, contact_id=contact.pk, **consent)
                    for contact, consent in with_consent
                    if (contact.pk, consent["granted_at"], consent["wording_version"]) not in known
                ],
                batch_size=UPSERT_BATCH,
            )
    return UpsertCounts(created=len(rows) - len(existing), updated=len(existing))


TAGS_ATTRIBUTE = "tags"  # a contact's tags: a list of short labels among its attributes


def contact_tag_add(contact: Contact, tag: str) -> bool:
    """Add ``tag`` to the contact's tags (the ``tags`` attribute, a list). True if it was new."""
    tag = (tag or "").strip()
    if not tag:
        return False
    with transaction.atomic():
        attributes = Contact.objects.select_for_update().values_list("attributes", flat=True).get(pk=contact.pk) or {}
        tags = attributes.get(TAGS_ATTRIBUTE)
        tags = list(tags) if isinstance(tags, list) else ([str(tags)] if tags else [])
        if tag in tags:
            return False
        attributes[TAGS_ATTRIBUTE] = [*tags, tag]
        Contact.objects.filter(pk=contact.pk).update(attributes=attributes, updated_at=timezone.now())
        contact.attributes = attributes
    return True


def contact_list_add(contact: Contact, contact_list_id: int) -> bool:
    """Add the contact to a list of its organization. True if it was not in it yet."""
    _membership, created = ContactListMembership.objects.get_or_create(
        contact_list_id=contact_list_id, contact_id=contact.pk
    )
    return created
