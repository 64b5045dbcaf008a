import factory

from messaging.models import Delivery
from tests.campaigns.factories import CampaignFactory, ContactFactory


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    campaign = factory.SubFactory(CampaignFactory)
    organization = factory.LazyAttribute(lambda o: o.campaign.organization)
    contact = factory.SubFactory(ContactFactory, organization=factory.SelfAttribute("..organization"))
