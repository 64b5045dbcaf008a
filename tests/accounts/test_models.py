"""Database constraints of the accounts app: rows that bypass forms are still refused."""

from datetime import timedelta

import pytest
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from accounts.models import (
    ApiKey,
    Carrier,
    CarrierReview,
    GatewayAccount,
    GatewayKind,
    Membership,
    OfficialAccount,
    ReviewStatus,
    Role,
    mask_secret,
)
from tests.accounts.factories import (
    CarrierReviewFactory,
    GatewayAccountFactory,
    MembershipFactory,
    OfficialAccountFactory,
    OrganizationFactory,
    UserFactory,
    approved_account,
)

pytestmark = pytest.mark.django_db


def refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


# --- Membership ---------------------------------------------------------------------------------


def test_membership_unique_per_user_and_org():
    membership = MembershipFactory()
    refused(lambda: Membership.objects.create(organization=membership.organization, user=membership.user, role=Role.VIEWER))
    Membership.objects.create(organization=OrganizationFactory(), user=membership.user, role=Role.VIEWER)


def test_membership_role_must_be_known():
    refused(lambda: MembershipFactory(role="superadmin"))
    membership = MembershipFactory(role=Role.VIEWER)
    refused(lambda: Membership.objects.filter(pk=membership.pk).update(role="root"))


# --- Official account ---------------------------------------------------------------------------


@pytest.mark.parametrize("colour", ["#0B57D0", "#ffffff", "#000000", "#AbCdEf"])
def test_brand_colour_hex_accepted(colour):
    OfficialAccountFactory(brand_color=colour)


@pytest.mark.parametrize("colour", ["red", "#12345", "#GGGGGG", "0B57D0", "#0B57D", "", "#FFF", "#0B57D\n"])
def test_brand_colour_must_be_hex(colour):
    refused(lambda: OfficialAccountFactory(brand_color=colour))


@pytest.mark.parametrize("colour", ["#1234567", "#0B57D0\n"])
def test_brand_colour_longer_than_seven_is_refused_by_the_column(colour):
    with pytest.raises(DataError), transaction.atomic():
        OfficialAccountFactory(brand_color=colour)


def test_brand_colour_update_is_refused_too():
    account = OfficialAccountFactory()
    refused(lambda: OfficialAccount.objects.filter(pk=account.pk).update(brand_color="blue"))


def test_legal_name_and_sms_sender_required():
    refused(lambda: OfficialAccountFactory(legal_name=""))
    refused(lambda: OfficialAccountFactory(sms_sender_id=""))


def test_display_name_unique_per_org():
    account = OfficialAccountFactory(display_name="テストショップ")
    refused(lambda: OfficialAccountFactory(organization=account.organization, display_name="テストショップ"))
    OfficialAccountFactory(organization=OrganizationFactory(), display_name="テストショップ")


# --- Carrier reviews ----------------------------------------------------------------------------


def test_one_review_per_carrier_and_account():
    review = CarrierReviewFactory(carrier=Carrier.AU)
    refused(lambda: CarrierReviewFactory(account=review.account, carrier=Carrier.AU))
    CarrierReviewFactory(account=review.account, carrier=Carrier.SOFTBANK)


def test_review_carrier_and_status_must_be_known():
    refused(lambda: CarrierReviewFactory(carrier="rakuten"))
    refused(lambda: CarrierReviewFactory(status="maybe"))


@pytest.mark.parametrize("status", [ReviewStatus.APPROVED, ReviewStatus.REJECTED])
def test_decision_needs_a_time(status):
    refused(lambda: CarrierReviewFactory(status=status, decided_at=None, reason="ロゴ不鮮明"))


def test_pending_review_needs_no_time():
    CarrierReviewFactory(status=ReviewStatus.PENDING, decided_at=None)


def test_rejection_needs_a_reason():
    refused(lambda: CarrierReviewFactory(status=ReviewStatus.REJECTED, reason=""))
    CarrierReviewFactory(status=ReviewStatus.REJECTED, reason="ロゴが不鮮明です")


def test_rejecting_by_update_without_reason_is_refused():
    review = CarrierReviewFactory(status=ReviewStatus.PENDING, decided_at=None)
    refused(lambda: CarrierReview.objects.filter(pk=review.pk).update(status=ReviewStatus.REJECTED, decided_at=timezone.now()))


# --- can_send -----------------------------------------------------------------------------------


def test_account_without_reviews_cannot_send():
    assert OfficialAccountFactory().can_send is False


def test_account_with_only_pending_or_rejected_reviews_cannot_send():
    account = OfficialAccountFactory()
    CarrierReviewFactory(account=account, carrier=Carrier.DOCOMO, status=ReviewStatus.PENDING, decided_at=None)
    CarrierReviewFactory(account=account, carrier=Carrier.AU, status=ReviewStatus.REJECTED, reason="審査基準外")
    assert account.can_send is False


def test_one_approved_carrier_is_enough_to_send():
    account = OfficialAccountFactory()
    CarrierReviewFactory(account=account, carrier=Carrier.DOCOMO, status=ReviewStatus.PENDING, decided_at=None)
    CarrierReviewFactory(account=account, carrier=Carrier.SOFTBANK, status=ReviewStatus.APPROVED)
    assert account.can_send is True


def test_approved_account_helper_sends():
    assert approved_account(OrganizationFactory()).can_send is True


# --- Gateway accounts ---------------------------------------------------------------------------


def test_gateway_rate_must_be_positive():
    refused(lambda: GatewayAccountFactory(rate_per_second=0))
    GatewayAccountFactory(rate_per_second=1)


def test_gateway_kind_must_be_known():
    refused(lambda: GatewayAccountFactory(kind="smpp"))


@pytest.mark.parametrize(("limit", "ok"), [(69, False), (70, True), (660, True), (670, True), (671, False)])
def test_gateway_sms_limit_range(limit, ok):
    if ok:
        GatewayAccountFactory(sms_char_limit=limit)
    else:
        refused(lambda: GatewayAccountFactory(sms_char_limit=limit))


def test_provider_fallback_only_for_cm():
    refused(lambda: GatewayAccountFactory(kind=GatewayKind.RBM, provider_fallback=True))
    gateway = GatewayAccountFactory(kind=GatewayKind.CM, provider_fallback=True)
    refused(lambda: GatewayAccount.objects.filter(pk=gateway.pk).update(kind=GatewayKind.RBM))


def test_gateway_name_unique_per_org():
    gateway = GatewayAccountFactory(name="cm-main")
    refused(lambda: GatewayAccountFactory(organization=gateway.organization, name="cm-main"))
    GatewayAccountFactory(name="cm-main")


def test_credentials_are_masked():
    gateway = GatewayAccountFactory(credentials={"client_token": "abcdefgh1234", "pin": "12"})
    assert gateway.masked_credentials() == {"client_token": "••••1234", "pin": "••••"}
    assert "abcdefgh" not in str(gateway.masked_credentials())
    assert mask_secret("") == "••••"


# --- API keys -----------------------------------------------------------------------------------


def test_api_key_stores_only_a_hash():
    organization = OrganizationFactory()
    key, secret = ApiKey.generate(organization, "基幹システム", ["send"], created_by=UserFactory())
    key.refresh_from_db()
    assert secret.startswith(f"pm_{key.prefix}_")
    assert key.key_hash == ApiKey.hash_secret(secret)
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.is_active
    key.revoke()
    key.refresh_from_db()
    assert not key.is_active
    assert key.revoked_at <= timezone.now() + timedelta(seconds=1)


def test_api_key_prefix_and_hash_unique():
    key, _ = ApiKey.generate(OrganizationFactory(), "a", ["send"])
    refused(lambda: ApiKey.objects.create(organization=key.organization, name="b", prefix=key.prefix, key_hash="x" * 64))
    refused(lambda: ApiKey.objects.create(organization=key.organization, name="c", prefix="other", key_hash=key.key_hash))
