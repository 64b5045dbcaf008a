from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import (
    ApiKey,
    Carrier,
    Invitation,
    MemberSession,
    Notification,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from campaigns.models import CampaignTemplate, ContactListMembership, CustomField, Segment
from messaging.models import Conversation, ConversationMessage, Delivery, KeywordRule
from messaging.models import TestNumber as Number
from tests.accounts.factories import (
    CarrierReviewFactory,
    GatewayAccountFactory,
    OfficialAccountFactory,
    member,
)
from tests.campaigns.factories import (
    CampaignFactory,
    ConsentFactory,
    ContactFactory,
    ContactListFactory,
)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    campaign = factory.SubFactory(CampaignFactory)
    organization = factory.LazyAttribute(lambda o: o.campaign.organization)
    contact = factory.SubFactory(ContactFactory, organization=factory.SelfAttribute("..organization"))


def tenant_objects(organization, tag="", user=None):
    """One row of every organization-scoped model, all belonging to ``organization``.

    Returns {model label: instance}. ``tag`` goes into every name, so a test can tell whether any of
    these rows leaked into a page (an admin list filter, a choice list).
    """
    owner = user or member(organization, Role.OWNER, username=f"{tag}-owner")
    gateway = GatewayAccountFactory(organization=organization, name=f"{tag}-gateway")
    account = OfficialAccountFactory(
        organization=organization,
        display_name=f"{tag}-account",
        legal_name=f"{tag}-legal",
        rcs_gateway=gateway,
    )
    review = CarrierReviewFactory(account=account, carrier=Carrier.DOCOMO, decided_at=timezone.now())
    api_key, _secret = ApiKey.generate(organization, f"{tag}-key", ["send"], created_by=owner)
    contact = ContactFactory(organization=organization, name=f"{tag}-contact")
    contact_list = ContactListFactory(organization=organization, name=f"{tag}-list")
    list_membership = ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    consent = ConsentFactory(contact=contact, organization=organization, source=f"https://{tag}.example.jp/form")
    campaign = CampaignFactory(
        organization=organization, official_account=account, name=f"{tag}-campaign", created_by=owner
    )
    campaign.audience_lists.add(contact_list)
    delivery = DeliveryFactory(organization=organization, campaign=campaign, contact=contact)
    conversation = Conversation.objects.create(organization=organization, official_account=account, contact=contact)
    conversation_message = ConversationMessage.objects.create(conversation=conversation, direction="in", text=f"{tag}-reply")
    webhook_endpoint = WebhookEndpoint.objects.create(
        organization=organization, url=f"https://{tag}.example.jp/hook", events=["message.sent"], secret="whsec_test"
    )
    webhook_delivery = WebhookDelivery.objects.create(endpoint=webhook_endpoint, event_type="message.sent", payload={})
    campaign_template = CampaignTemplate.objects.create(
        organization=organization, name=f"{tag}-template", content={"text": f"{tag}-template"}
    )
    test_number = Number.objects.create(organization=organization, phone=contact.phone, label=f"{tag}-test-number")
    invitation = Invitation.objects.create(organization=organization, email=f"{tag}-invitee@example.jp",
                                           token_hash=Invitation.hash_token(f"{tag}-invitation"),
                                           expires_at=timezone.now() + timedelta(days=7), invited_by=owner)
    member_session = MemberSession.objects.create(user=owner, session_key=f"{tag}-session-key")
    keyword_rule = KeywordRule.objects.create(organization=organization, official_account=account,
                                              keyword=f"{tag}-keyword", action="tag", tag=f"{tag}-tag")
    notification = Notification.objects.create(organization=organization, recipient=owner, kind="conversation_assigned",
                                               subject=f"{tag}-notification", url="/messaging/inbox/")
    custom_field = CustomField.objects.create(organization=organization, key=f"{tag}-rank", label=f"{tag}-rank")
    segment = Segment.objects.create(organization=organization, name=f"{tag}-segment")
    return {
        "accounts.invitation": invitation,
        "accounts.membersession": member_session,
        "accounts.notification": notification,
        "campaigns.customfield": custom_field,
        "campaigns.segment": segment,
        "messaging.testnumber": test_number,
        "messaging.keywordrule": keyword_rule,
        "accounts.webhookendpoint": webhook_endpoint,
        "accounts.webhookdelivery": webhook_delivery,
        "auth.user": owner,
        "accounts.organization": organization,
        "accounts.membership": owner.memberships.get(organization=organization),
        "accounts.gatewayaccount": gateway,
        "accounts.officialaccount": account,
        "accounts.carrierreview": review,
        "accounts.apikey": api_key,
        "campaigns.contact": contact,
        "campaigns.contactlist": contact_list,
        "campaigns.contactlistmembership": list_membership,
        "campaigns.consent": consent,
        "campaigns.campaign": campaign,
        "campaigns.campaigntemplate": campaign_template,
        "messaging.delivery": delivery,
        "messaging.conversation": conversation,
        "messaging.conversationmessage": conversation_message,
    }
