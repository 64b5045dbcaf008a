"""Inbox automation: keyword rules and the away message, per official account.

A person's text (or the label of a chip they tapped) that matches a keyword rule of the account they wrote to makes the rule act: reply
with a saved message (``QuickReply``), add a tag (``campaigns.contacts.contact_tag_add``) or a list,
assign the conversation, or record consent (the opt-in keyword's service,
``campaigns.optout.contact_opt_in_by_keyword``, and its confirmation). Keywords are compared as the
opt-out keywords are (``campaigns.optout.normalize_keyword``: full- and half-width, case, spaces),
either the whole message or contained in it. Every matching rule acts, in the order they were made;
each counts how often it fired.

Outside the organization's business hours (``core.business_hours``) the account's away message goes
out, once per conversation per closed window, unless something already answered the message.

What always holds:

- an opt-out keyword (or the opt-out postback) wins: no rule acts on it, and no rule may have one
  as its keyword; the person gets only the opt-out confirmation;
- nobody who has opted out gets an automatic answer (a rule's reply, the away message); a consent
  rule is how such a person subscribes again, as with the opt-in keyword;
- an answer goes through ``inbox.conversation_answer``, the send path of an operator's reply (the
  send rules of ``messaging.services.message_send`` for a conversational, transactional reply).

It runs on ``signals.conversation_message_received`` (connected in MessagingConfig.ready), inside
the transaction that stores the message; each rule acts in its own savepoint, so one that fails
(logged) never loses the message or holds back the others.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership
from accounts.tenancy import has_permission
from campaigns.contacts import contact_list_add, contact_tag_add
from campaigns.models import Contact, ContactList
from campaigns.optout import contact_opt_in_by_keyword, is_opt_out_postback, normalize_keyword
from core.business_hours import closed_since
from core.sms_text import DEFAULT_LIMIT, validate_sms_text
from messaging import inbox
from messaging.models import (
    AwayMessage,
    Conversation,
    KeywordAction,
    KeywordMatch,
    KeywordRule,
    MessageKind,
    QuickReply,
)

logger = logging.getLogger(__name__)

KEYWORD_MAX = 100
TAG_MAX = 50
AWAY_TEXT_MAX = 1000


# -- matching ------------------------------------------------------------------------------------


def keyword_matches(rule: KeywordRule, text: str) -> bool:
    keyword, text = normalize_keyword(rule.keyword), normalize_keyword(text)
    if not keyword or not text:
        return False
    if rule.match == KeywordMatch.CONTAINS:
        return keyword in text
    return keyword == text


# -- managing rules ------------------------------------------------------------------------------


def keyword_rule_save(account, *, keyword: str, match: str, action: str, quick_reply_id=None, tag: str = "",
                      contact_list_id=None, assignee_id=None, rule: KeywordRule | None = None) -> KeywordRule:
    """Create (or change) a keyword rule of ``account``; a ValidationError names the field at fault."""
    errors: dict[str, list[str]] = {}
    keyword = (keyword or "").strip()
    if not normalize_keyword(keyword):
        errors.setdefault("keyword", []).append(_("Enter the keyword the person texts."))
    elif len(keyword) > KEYWORD_MAX:
        errors.setdefault("keyword", []).append(
            _("A keyword can be at most %(max)d characters.") % {"max": KEYWORD_MAX})
    elif is_opt_out_postback(keyword):
        errors.setdefault("keyword", []).append(
            _("An opt-out keyword always opts the person out: it cannot start a rule."))
    if match not in KeywordMatch.values:
        errors.setdefault("match", []).append(_("Choose how the keyword is matched."))
    if action not in KeywordAction.values:
        errors.setdefault("action", []).append(_("Choose what the rule does."))
    elif action == KeywordAction.CONSENT and match != KeywordMatch.EXACT:
        errors.setdefault("match", []).append(
            _("Consent is recorded only when the whole message is the keyword: choose an exact match."))
    organization = account.organization
    quick_reply = contact_list = assignee = None
    tag = (tag or "").strip()
    if action == KeywordAction.REPLY:
        quick_reply = QuickReply.objects.filter(organization=organization, pk=_int(quick_reply_id)).first()
        if quick_reply is None:
            errors.setdefault("quick_reply", []).append(
                _("Choose the saved message to reply with (saved messages are the inbox's quick replies)."))
        else:
            _check_sms_length(account, quick_reply.text, "quick_reply", errors)
    elif action == KeywordAction.TAG:
        if not tag:
            errors.setdefault("tag", []).append(_("Enter the tag to add."))
        elif len(tag) > TAG_MAX:
            errors.setdefault("tag", []).append(_("A tag can be at most %(max)d characters.") % {"max": TAG_MAX})
    elif action == KeywordAction.LIST:
        contact_list = ContactList.objects.filter(organization=organization, pk=_int(contact_list_id)).first()
        if contact_list is None:
            errors.setdefault("contact_list", []).append(_("Choose the list to add the person to."))
    elif action == KeywordAction.ASSIGN:
        membership = Membership.objects.filter(organization=organization, user_id=_int(assignee_id)).select_related(
            "user").first()
        if membership is None or not has_permission(membership.user, organization.pk, "operate"):
            errors.setdefault("assignee", []).append(_("Choose a member who answers the inbox."))
        else:
            assignee = membership.user
    if errors:
        raise ValidationError(errors)
    rule = rule or KeywordRule(organization=organization, official_account=account)
    rule.keyword, rule.match, rule.action = keyword, match, action
    rule.quick_reply, rule.contact_list, rule.assignee = quick_reply, contact_list, assignee
    rule.tag = tag if action == KeywordAction.TAG else ""
    rule.save()
    return rule


def _check_sms_length(account, text: str, field: str, errors: dict) -> None:
    """An automatic answer may go by SMS: it must fit the account's SMS limit, as ``message_send`` checks."""
    limit = account.sms_gateway.sms_char_limit if account.sms_gateway else DEFAULT_LIMIT
    try:
        validate_sms_text(text, limit=limit, field=field)
    except ValidationError as error:
        for problem in error.message_dict.get(field, []):
            errors.setdefault(field, []).append(problem)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def keyword_rule_set_enabled(rule: KeywordRule, enabled: bool) -> KeywordRule:
    KeywordRule.objects.filter(pk=rule.pk).update(enabled=enabled)
    rule.enabled = enabled
    return rule


def keyword_rule_delete(rule: KeywordRule) -> None:
    rule.delete()


def away_message_save(account, *, text: str, enabled: bool) -> AwayMessage:
    text = (text or "").strip()
    if enabled and not text:
        raise ValidationError({"text": [_("Write the away message before switching it on.")]})
    if len(text) > AWAY_TEXT_MAX:
        raise ValidationError({"text": [_("The away message can be at most %(max)d characters.") % {
            "max": AWAY_TEXT_MAX}]})
    errors: dict[str, list[str]] = {}
    if text:
        _check_sms_length(account, text, "text", errors)
    if errors:
        raise ValidationError(errors)
    away, _created = AwayMessage.objects.update_or_create(
        official_account=account, defaults={"text": text, "enabled": enabled})
    return away


# -- acting on a message -------------------------------------------------------------------------


def on_conversation_message_received(sender, message, conversation, contact, account, handled="", **kwargs):
    """``signals.conversation_message_received`` receiver (connected in MessagingConfig.ready)."""
    inbox_automate(message, conversation, contact, account, handled)


def _opted_out(contact: Contact) -> bool:
    return Contact.objects.filter(pk=contact.pk).values_list("opted_out_at", flat=True).get() is not None


def inbox_automate(message, conversation: Conversation, contact: Contact, account, handled: str = "") -> list[str]:
    """Apply the account's keyword rules and away message to one inbound message (see the module
    docstring). Returns what acted: "rule:<id>" per rule that fired, "away" for the away message."""
    if handled == "opt_out":
        return []  # the opt-out keyword wins; its confirmation is the only answer
    conversation.official_account = account
    conversation.contact = contact
    acted: list[str] = []
    answered = handled == "opt_in"  # the opt-in keyword's confirmation already answered
    if message.kind in (MessageKind.TEXT, MessageKind.POSTBACK) and message.text:  # a chip's label counts too
        rules = KeywordRule.objects.filter(official_account=account, enabled=True).select_related(
            "quick_reply", "assignee").order_by("id")
        for rule in rules:
            if not keyword_matches(rule, message.text):
                continue
            try:
                with transaction.atomic():
                    fired, replied = _fire(rule, message, conversation, contact, account)
                    if fired:
                        KeywordRule.objects.filter(pk=rule.pk).update(
                            fired_count=F("fired_count") + 1, last_fired_at=timezone.now())
            except Exception:
                logger.exception("keyword rule %s on message %s failed", rule.pk, message.pk)
                continue
            if fired:
                acted.append(f"rule:{rule.pk}")
            answered = answered or replied
    if not answered and _away_send(message, conversation, contact, account):
        acted.append("away")
    return acted


def _fire(rule: KeywordRule, message, conversation, contact, account) -> tuple[bool, bool]:
    """(fired, answered) for one matching rule."""
    if rule.action == KeywordAction.REPLY:
        if _opted_out(contact) or rule.quick_reply is None:
            return False, False
        inbox.conversation_answer(conversation, rule.quick_reply.text, automation="keyword_rule")
        return True, True
    if rule.action == KeywordAction.TAG:
        contact_tag_add(contact, rule.tag)
        return True, False
    if rule.action == KeywordAction.LIST:
        if rule.contact_list_id is None:
            return False, False
        contact_list_add(contact, rule.contact_list_id)
        return True, False
    if rule.action == KeywordAction.ASSIGN:
        if rule.assignee is None or not has_permission(rule.assignee, account.organization_id, "operate"):
            return False, False  # the member left or no longer answers the inbox
        inbox.conversation_assign(conversation, rule.assignee)
        return True, False
    if rule.action == KeywordAction.CONSENT:
        consent = contact_opt_in_by_keyword(
            contact,
            source=f"keyword rule “{rule.keyword}” of {account.display_name}"[:300],
            evidence=(f"inbound {message.provider} message {message.provider_event_id} (conversation message "
                      f"{message.pk}, {message.channel or '-'}) at {message.created_at.isoformat()}: "
                      f"{message.text}")[:2000],
        )
        if consent is None:
            return True, False  # already consented: nothing recorded, nothing sent
        inbox.opt_in_confirmation_send(contact, account)
        return True, True
    return False, False


def _away_send(message, conversation: Conversation, contact: Contact, account) -> bool:
    away = AwayMessage.objects.filter(official_account=account, enabled=True).exclude(text="").first()
    if away is None:
        return False
    organization = account.organization
    at = message.created_at
    window_start = closed_since(at, organization.business_hours_start, organization.business_hours_end,
                                organization.business_days)
    if window_start is None or _opted_out(contact):
        return False
    try:
        with transaction.atomic():
            # Claimed with a conditional UPDATE: two messages applied at once send one away message.
            claimed = Conversation.objects.filter(pk=conversation.pk).filter(
                Q(away_message_sent_at__isnull=True) | Q(away_message_sent_at__lt=window_start)
            ).update(away_message_sent_at=at)
            if not claimed:
                return False
            inbox.conversation_answer(conversation, away.text, automation="away_message")
            AwayMessage.objects.filter(pk=away.pk).update(fired_count=F("fired_count") + 1,
                                                          last_fired_at=timezone.now())
    except ValidationError:
        logger.exception("away message of account %s to conversation %s could not be sent", account.pk,
                         conversation.pk)
        return False
    return True
