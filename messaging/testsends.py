"""Test sends: a campaign's content to the organization's own, confirmed test numbers.

- **Only to test numbers.** Owners and admins register the organization's test numbers
  (``test_number_register``); a number takes test sends only after the code sent to it (a
  transactional message through ``message_send``) was typed back (``test_number_confirm``). Only an
  HMAC of the code is kept; it expires after ``CODE_TTL`` and after ``CODE_MAX_ATTEMPTS`` wrong tries,
  and a new code is sent at most once per ``CODE_RESEND_WAIT``.
- **The campaign's rules.** ``campaign_test_send`` goes through ``messaging.services.message_send``
  with the campaign's own classification: a promotion needs the test number's active consent, is
  refused after an opt-out, must meet the display rules, and is held by quiet hours, like any
  promotion sent on its own. Drafts may be test-sent: that is what a test is for, and it reaches
  only the organization's own confirmed numbers.
- **Visibly a test.** ``TEST_MARKER`` starts the SMS text and the +Message text (the text, or each
  card's title; content with only a file gets a reply chip labelled with the marker).
- **Limited and audited.** Each member may send ``settings.TEST_SEND_LIMIT_PER_HOUR`` test sends and
  confirmation codes per clock hour (``core.throttle.window_count``, shared through Redis). Every
  test send, refused ones included, and every change to a test number goes to the audit log.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import OfficialAccount
from audit.services import audit_record
from core import throttle
from core.phone import normalize_mobile
from messaging.models import Delivery, TestNumber
from messaging.services import message_send

TEST_MARKER = "【テスト】"
CODE_TTL = timedelta(minutes=10)
CODE_MAX_ATTEMPTS = 5
CODE_RESEND_WAIT = timedelta(seconds=60)
# The confirmation code message (customer-facing: always Japanese).
CODE_TEXT = "【{name}】テスト送信先の確認コード: {code}（10分間有効）。お心当たりがなければ破棄してください。"


class TestSendRefused(ValidationError):
    """A test send or code the rules do not let through; nothing was sent."""

    __test__ = False


def _refuse(field: str, message: str, code: str):
    raise TestSendRefused({field: [ValidationError(message, code=code)]})


def _member_allowance(organization, user) -> None:
    """Count one test send or code for the member; refuse past the hourly limit."""
    period = 3600
    window = int(time.time() // period)
    count = throttle.window_count(f"pm:test-send:{organization.pk}:{user.pk}:{window}", period)
    if count > settings.TEST_SEND_LIMIT_PER_HOUR:
        _refuse("phone", _("You have reached the limit of %(limit)d test sends per hour. Try again later.")
                % {"limit": settings.TEST_SEND_LIMIT_PER_HOUR}, "rate_limited")


def _normalized(phone: str) -> str:
    try:
        return normalize_mobile(phone)
    except ValidationError as error:
        raise TestSendRefused({"phone": error.error_list}) from None


# -- test numbers --------------------------------------------------------------------------------


def confirmed_test_numbers(organization):
    """The numbers test sends may go to (a lazy queryset: the pages list them)."""
    return TestNumber.objects.filter(organization=organization, confirmed_at__isnull=False).order_by("phone")


def _code_hash(test_number: TestNumber, code: str) -> str:
    message = f"test-number:{test_number.pk}:{test_number.phone}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _code_account(organization) -> OfficialAccount | None:
    accounts = OfficialAccount.with_approval(OfficialAccount.objects.filter(organization=organization)).order_by("id")
    return next((account for account in accounts if account.approved), None)


def test_number_register(organization, phone: str, *, user, label: str = "", request=None) -> TestNumber:
    """Register a number for test sends and send it its confirmation code."""
    e164 = _normalized(phone)
    if TestNumber.objects.filter(organization=organization, phone=e164).exists():
        _refuse("phone", _("This number is already registered. Send a new code from the list if needed."), "duplicate")
    with transaction.atomic():  # a number whose code cannot be sent is not kept
        try:
            with transaction.atomic():
                number = TestNumber.objects.create(organization=organization, phone=e164, label=label.strip()[:100],
                                                   created_by=user)
        except IntegrityError:  # registered by someone else a moment ago
            _refuse("phone", _("This number is already registered. Send a new code from the list if needed."),
                    "duplicate")
        audit_record("test_number.registered", request=request, organization=organization, actor=user,
                     target=number, details={"phone": e164})
        test_number_send_code(number, user=user, request=request)
    return number



def test_number_send_code(number: TestNumber, *, user, request=None) -> Delivery:
    """Send a new confirmation code to the number (the previous one stops working)."""
    now = timezone.now()
    if number.confirmed_at:
        _refuse("code", _("This number is already confirmed."), "confirmed")
    if number.code_sent_at and now - number.code_sent_at < CODE_RESEND_WAIT:
        _refuse("code", _("A code was sent less than a minute ago. Wait a moment before asking for another."),
                "too_soon")
    account = _code_account(number.organization)
    if account is None:
        _refuse("phone", _("No official account of this organization can send messages yet, so no code can be sent."),
                "no_account")
    _member_allowance(number.organization, user)
    code = f"{secrets.randbelow(10**6):06d}"
    text = CODE_TEXT.format(name=account.display_name, code=code)
    with transaction.atomic():
        # Claim the resend slot: of two requests at once, only one sends a code.
        claimed = TestNumber.objects.filter(pk=number.pk, confirmed_at__isnull=True, code_sent_at=number.code_sent_at).update(
            code_hash=_code_hash(number, code), code_sent_at=now, code_expires_at=now + CODE_TTL, code_attempts=0
        )
        if not claimed:
            _refuse("code", _("A code was sent less than a minute ago. Wait a moment before asking for another."),
                    "too_soon")
        delivery = message_send(organization=number.organization, official_account=account, phone=number.phone,
                                content={"text": text}, sms_text=text, client_reference=f"test-number:{number.pk}")
        audit_record("test_number.code_sent", request=request, organization=number.organization, actor=user,
                     target=number, details={"phone": number.phone, "delivery": str(delivery.uuid)})
    number.code_sent_at, number.code_expires_at, number.code_attempts = now, now + CODE_TTL, 0
    return delivery



def test_number_confirm(number: TestNumber, code: str, *, user, request=None) -> TestNumber:
    """Confirm the number with the code sent to it; wrong, expired or exhausted codes are refused."""
    code = "".join((code or "").split())
    now = timezone.now()
    problem = None
    with transaction.atomic():
        row = TestNumber.objects.select_for_update().get(pk=number.pk)
        if row.confirmed_at:
            return row
        if not row.code_hash or row.code_expires_at is None or row.code_expires_at <= now:
            problem = (_("This code has expired. Send a new code."), "expired")
        elif row.code_attempts >= CODE_MAX_ATTEMPTS:
            problem = (_("Too many wrong codes. Send a new code."), "too_many_attempts")
        elif not hmac.compare_digest(row.code_hash, _code_hash(row, code)):
            row.code_attempts += 1
            row.save(update_fields=["code_attempts"])
            problem = (_("This code is not right. Check the message and try again."), "wrong_code")
        else:
            row.confirmed_at = now
            row.code_hash, row.code_expires_at = "", None
            row.save(update_fields=["confirmed_at", "code_hash", "code_expires_at"])
            audit_record("test_number.confirmed", request=request, organization=row.organization_id, actor=user,
                         target=row, details={"phone": row.phone})
    if problem:
        _refuse("code", *problem)
    return row



def test_number_remove(number: TestNumber, *, user, request=None) -> None:
    with transaction.atomic():
        audit_record("test_number.removed", request=request, organization=number.organization_id, actor=user,
                     target=number, details={"phone": number.phone})
        number.delete()



# -- test sends ----------------------------------------------------------------------------------


def _card_marked(card: dict) -> dict:
    card["title"] = f"{TEST_MARKER}{card.get('title') or ''}"
    return card


def test_marked_content(content: dict) -> dict:
    """The +Message content with the test marker where the person sees it first."""
    marked = copy.deepcopy(content or {})
    if "text" in marked:
        marked["text"] = f"{TEST_MARKER}{marked['text']}"
    elif "card" in marked:
        _card_marked(marked["card"])
    elif "carousel" in marked:
        for card in marked["carousel"].get("cards") or []:
            _card_marked(card)
    else:  # a file alone has no text: a chip names it a test
        marked["chips"] = [{"type": "reply", "label": TEST_MARKER, "postback": "test_send"}, *(marked.get("chips") or [])]
    return marked



def campaign_test_send(campaign, phone: str, user, *, request=None) -> Delivery:
    """Send the campaign's content, marked as a test, to one confirmed test number of its organization."""
    organization = campaign.organization
    e164 = ""
    try:
        e164 = _normalized(phone)
        if not confirmed_test_numbers(organization).filter(phone=e164).exists():
            _refuse("phone", _("Test sends go only to this organization's confirmed test numbers. An owner or admin "
                               "registers them under Test numbers."), "not_test_number")
        _member_allowance(organization, user)
        with transaction.atomic():
            delivery = message_send(
                organization=organization,
                official_account=campaign.official_account,
                phone=e164,
                content=test_marked_content(campaign.content),
                sms_text=f"{TEST_MARKER}{campaign.sms_text}",
                classification=campaign.classification,
                ttl_seconds=campaign.ttl_seconds,
                client_reference=f"test:{campaign.pk}",
            )
            audit_record("campaign.test_sent", request=request, organization=organization, actor=user,
                         target=campaign, details={"phone": e164, "delivery": str(delivery.uuid),
                                                   "classification": campaign.classification,
                                                   "campaign_status": campaign.status})
    except ValidationError as error:
        codes = sorted({item.code or "invalid" for item in _flat(error)})
        audit_record("campaign.test_refused", request=request, organization=organization, actor=user,
                     target=campaign, details={"phone": e164 or str(phone)[:32], "codes": codes})
        raise
    return delivery


def _flat(error: ValidationError) -> list[ValidationError]:
    if hasattr(error, "error_dict"):
        return [item for items in error.error_dict.values() for item in items]
    return list(error.error_list)
