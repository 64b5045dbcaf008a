import factory
from django.utils import timezone

from campaigns.models import Campaign, Classification, Consent, ConsentMethod, Contact, ContactList
from tests.accounts.factories import OfficialAccountFactory, OrganizationFactory, UserFactory


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    organization = factory.SubFactory(OrganizationFactory)
    phone = factory.Sequence(lambda n: f"+8190{10000000 + n:08d}")
    name = factory.Sequence(lambda n: f"山田 太郎{n}")


class ContactListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactList

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"リスト{n}")


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    contact = factory.SubFactory(ContactFactory)
    organization = factory.LazyAttribute(lambda o: o.contact.organization)
    granted_at = factory.LazyFunction(timezone.now)
    method = ConsentMethod.WEB_FORM
    source = "https://shop.example.jp/signup"
    wording_version = "v1"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    organization = factory.SubFactory(OrganizationFactory)
    official_account = factory.SubFactory(
        OfficialAccountFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"キャンペーン{n}")
    classification = Classification.TRANSACTION
    content = factory.LazyFunction(lambda: {"text": "ご注文の商品を発送しました。"})
    sms_text = "ご注文の商品を発送しました。"
    created_by = factory.SubFactory(UserFactory)
