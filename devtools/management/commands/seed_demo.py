"""Seed a demo organization: owner login, approved official account pointing at the sandbox carrier,
1,000 consented contacts in a list, a confirmed test number, the opt-in keyword 登録, and a draft
coupon campaign. Safe to run again."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import GatewayPrice, Membership, Role
from campaigns.models import (
    Campaign,
    Classification,
    Consent,
    ConsentMethod,
    Contact,
    ContactList,
    ContactListMembership,
    ListPurpose,
)
from devtools.sandbox_setup import sandbox_organization
from messaging.models import TestNumber

DEMO_PASSWORD = "plusmessage-demo"
DEMO_USERS = [("demo", Role.OWNER), ("marketer", Role.MARKETER), ("operator", Role.OPERATOR)]
DEMO_CONTACTS = 1000

FIXED_MENU = {
    "items": [
        {"type": "open_url", "label": "公式サイト", "url": "https://shop.example.jp/"},
        {
            "label": "お問い合わせ",
            "items": [
                {"type": "dial", "label": "電話する", "phone": "+81120000000"},
                {"type": "reply", "label": "チャットで質問", "postback": "menu:faq"},
            ],
        },
        {"type": "location", "label": "店舗を探す", "latitude": 35.6812, "longitude": 139.7671, "query": "東京駅"},
    ]
}

COUPON_CONTENT = {
    "carousel": {
        "width": "MEDIUM",
        "cards": [
            {
                "title": "{{name}}様限定 20%OFFクーポン",
                "description": "デモ商店（株式会社デモ商店）より。今週末までご利用いただけます。配信停止は「停止」と返信してください。",
                "media": {"url": "https://shop.example.jp/img/coupon.jpg", "height": "MEDIUM"},
                "buttons": [{"type": "open_url", "label": "クーポンを使う", "url": "https://shop.example.jp/coupon"}],
            },
            {
                "title": "新商品のご案内",
                "description": "秋の新作が入荷しました。",
                "buttons": [
                    {"type": "open_url", "label": "商品を見る", "url": "https://shop.example.jp/new"},
                    {"type": "reply", "label": "配信停止", "postback": "optout"},
                ],
            },
        ],
    },
    "chips": [{"type": "reply", "label": "興味あり", "postback": "coupon:interested"}],
}
COUPON_SMS = (
    "【株式会社デモ商店】{{name}}様限定20%OFFクーポン https://shop.example.jp/coupon "
    "配信停止は「停止」と返信"
)


DEMO_PRICES = [("rbm", "rcs", "", "4"), ("cm", "sms", "", "3.3"), ("cm", "sms", "rakuten", "8.8")]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization, its login and its data."

    def handle(self, *args, **options):
        with transaction.atomic():
            demo = sandbox_organization(
                slug="demo",
                name="デモ商店",
                sandbox_url=settings.SANDBOX_URL,
                rate=500,
                token_prefix="demo",
                account_name="デモ商店",
                account_fields={
                    "legal_name": "株式会社デモ商店",
                    "description": "デモ用の公式アカウントです。",
                    "brand_color": "#D93025",
                    "sms_sender_id": "DEMOSHOP",
                    "fixed_menu": FIXED_MENU,
                },
                approved_at=timezone.now() - timedelta(days=30),
            )
            organization, account = demo.organization, demo.account
            # Example prices (yen, illustrative), so estimates and usage show amounts; never overwritten.
            for gateway, unit, carrier, price in DEMO_PRICES:
                GatewayPrice.objects.get_or_create(
                    gateway=getattr(demo, gateway), unit=unit, carrier=carrier, defaults={"price": Decimal(price)}
                )
            users = {}
            for username, role in DEMO_USERS:
                user, created = get_user_model().objects.get_or_create(
                    username=username, defaults={"email": f"{username}@demo.example.jp"}
                )
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.is_staff = role == Role.OWNER
                    user.is_superuser = role == Role.OWNER
                    user.save()
                Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": role})
                users[username] = user

            members, _ = ContactList.objects.get_or_create(
                organization=organization,
                name="会員（販促同意あり）",
                defaults={"purpose": ListPurpose.PROMOTION, "description": "会員登録時に配信同意を得た方"},
            )
            phones = [f"+8190{20000000 + i:08d}" for i in range(DEMO_CONTACTS)]
            existing = set(Contact.objects.filter(organization=organization, phone__in=phones).values_list("phone", flat=True))
            Contact.objects.bulk_create(
                [
                    Contact(organization=organization, phone=phone, name=f"デモ会員{i + 1:04d}", attributes={"rank": "gold" if i % 10 == 0 else "regular"})
                    for i, phone in enumerate(phones)
                    if phone not in existing
                ]
            )
            contacts = list(Contact.objects.filter(organization=organization, phone__in=phones).only("id"))
            ContactListMembership.objects.bulk_create(
                [ContactListMembership(contact_list=members, contact=c) for c in contacts], ignore_conflicts=True
            )
            consented = set(Consent.objects.filter(contact__in=contacts).values_list("contact_id", flat=True))
            granted = timezone.now() - timedelta(days=90)
            Consent.objects.bulk_create(
                [
                    Consent(
                        organization=organization,
                        contact=c,
                        granted_at=granted,
                        method=ConsentMethod.WEB_FORM,
                        source="https://shop.example.jp/members/signup",
                        wording_version="2026-04",
                        evidence="demo signup form",
                    )
                    for c in contacts
                    if c.id not in consented
                ]
            )

            # The first member's phone takes test sends at once: its code would only reach the sandbox.
            TestNumber.objects.get_or_create(organization=organization, phone=phones[0], defaults={
                "label": "デモ担当者", "confirmed_at": timezone.now(), "created_by": users["demo"]})
            if not organization.opt_in_keyword:
                organization.opt_in_keyword = "登録"
                organization.save(update_fields=["opt_in_keyword"])

            campaign, _ = Campaign.objects.get_or_create(
                organization=organization,
                name="週末クーポン配信",
                defaults={
                    "official_account": account,
                    "classification": Classification.PROMOTION,
                    "content": COUPON_CONTENT,
                    "sms_text": COUPON_SMS,
                    "ttl_seconds": 600,
                    "created_by": users["marketer"],
                },
            )
            campaign.audience_lists.add(members)

        login = (
            f"  Demo login: {', '.join(u for u, _ in DEMO_USERS)} / password: {DEMO_PASSWORD}"
            f"  (demo is the owner and a superuser)\n"
        )
        (settings.VAR_DIR / "demo-login.txt").write_text(login)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(login)
