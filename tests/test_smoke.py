import pytest

from tests.messaging.factories import DeliveryFactory


@pytest.mark.django_db
def test_factories_build_a_delivery_chain():
    delivery = DeliveryFactory()
    assert delivery.contact.organization_id == delivery.campaign.organization_id
