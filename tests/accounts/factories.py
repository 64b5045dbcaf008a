import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import (
    Carrier,
    CarrierReview,
    GatewayAccount,
    GatewayKind,
    Membership,
    OfficialAccount,
    Organization,
    ReviewStatus,
    Role,
)
from devtools.sandbox_setup import carrier_reviews_approve

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.jp")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"株式会社テスト{n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class GatewayAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GatewayAccount

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"gateway-{n}")
    kind = GatewayKind.RBM
    base_url = "http://127.0.0.1:8025"
    credentials = factory.LazyFunction(lambda: {"client_token": "test-client-token", "bearer_token": "test-bearer"})
    rate_per_second = 1000


class OfficialAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OfficialAccount

    organization = factory.SubFactory(OrganizationFactory)
    display_name = factory.Sequence(lambda n: f"テストショップ{n}")
    legal_name = factory.Sequence(lambda n: f"株式会社テストショップ{n}")
    sms_sender_id = "TESTSHOP"


class CarrierReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CarrierReview

    account = factory.SubFactory(OfficialAccountFactory)
    carrier = Carrier.DOCOMO
    status = ReviewStatus.APPROVED
    decided_at = factory.LazyFunction(timezone.now)


def approved_account(organization, **kwargs):
    """An official account approved by all three carriers."""
    account = OfficialAccountFactory(organization=organization, **kwargs)
    carrier_reviews_approve(account)
    return account


def member(organization, role=Role.OWNER, **user_kwargs):
    user = UserFactory(**user_kwargs)
    MembershipFactory(organization=organization, user=user, role=role)
    return user
