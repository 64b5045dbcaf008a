"""Removing a whole organization (benchmarks and tests make throwaway ones).

Campaigns and official accounts are protected against accidental deletion (PROTECT), so they go
first, in dependency order, and the organization last.
"""

from django.db import transaction

from campaigns.models import Campaign


def delete_organization(organization) -> None:
    with transaction.atomic():
        Campaign.objects.filter(organization=organization, parent__isnull=False).delete()
        Campaign.objects.filter(organization=organization).delete()
        organization.deliveries.all().delete()
        organization.official_accounts.all().delete()
        organization.delete()
