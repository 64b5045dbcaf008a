"""Request validation for both wire formats, with the platforms' own limits.

The sandbox answers 400 where the real platform would, so an adapter that lets an oversized or
malformed message through is caught by the tests. Each checker returns a list of problems (empty
when valid); the first one becomes the error message.
"""

from __future__ import annotations

import re

# RBM platform limits (not the console's stricter +Message caps).
RBM_TEXT_MAX = 3072
RBM_SUGGESTIONS_MAX = 11
RBM_CARD_SUGGESTIONS_MAX = 4
RBM_LABEL_MAX = 25
RBM_TITLE_MAX = 200
RBM_DESCRIPTION_MAX = 2000
RBM_POSTBACK_MAX = 2048
RBM_URL_MAX = 2048
RBM_CAROUSEL_MIN = 2
RBM_CAROUSEL_MAX = 10
TRAFFIC_TYPES = {
    "MESSAGE_TRAFFIC_TYPE_UNSPECIFIED",
    "AUTHENTICATION",
    "TRANSACTION",
    "PROMOTION",
    "SERVICEREQUEST",
    "ACKNOWLEDGEMENT",
}
_TTL = re.compile(r"^[0-9]+(\.[0-9]{1,9})?s$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
CM_NUMBER = re.compile(r"^00[1-9][0-9]{6,14}$")

# CM.com: SMS text as Japanese carriers accept it.
CM_SMS_MAX = 670
CM_BATCH_MAX = 100
CM_CHANNELS = {"SMS", "RCS", "WhatsApp", "Viber", "Apple Messages for Business"}

# CM's gateway matches property names without regard to case: its documentation writes
# `producttoken`, its own clients (@cmdotcom/text-sdk) `productToken`. The sandbox reads every name
# in one spelling, the documented one, so both are routed as the real gateway routes them.
CM_PROPERTY_NAMES = (
    "messages", "authentication", "producttoken", "msg", "from", "to", "number", "body", "type", "content",
    "reference", "allowedChannels", "richContent", "conversation", "suggestions", "text", "media",
    "mediaName", "mediaUri", "mimeType", "carousel", "cards", "cardWidth", "action", "label", "url",
    "postbackdata", "dial", "phoneNumber", "viewLocation", "searchQuery", "latitude", "longitude",
    "calendar", "startTime", "endTime", "title", "description", "customGrouping3",
    "minimumNumberOfMessageParts", "maximumNumberOfMessageParts", "validity",
)
_CM_SPELLING = {name.lower(): name for name in CM_PROPERTY_NAMES}


def cm_canonical(value):
    """A CM request with every known property name in its documented spelling (others as sent)."""
    if isinstance(value, dict):
        return {_CM_SPELLING.get(str(key).lower(), key): cm_canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cm_canonical(item) for item in value]
    return value


def _url(problems, field, value):
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        problems.append(f"{field}: an http(s) URL is required")
    elif len(value) > RBM_URL_MAX:
        problems.append(f"{field}: longer than {RBM_URL_MAX}")


def _suggestion(problems, field, item):
    if not isinstance(item, dict):
        problems.append(f"{field}: must be an object")
        return
    kinds = [key for key in ("reply", "action") if key in item]
    if len(kinds) != 1:
        problems.append(f"{field}: exactly one of reply, action")
        return
    body = item[kinds[0]]
    if not isinstance(body, dict):
        problems.append(f"{field}.{kinds[0]}: must be an object")
        return
    text = body.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{field}.{kinds[0]}.text: required")
    elif len(text) > RBM_LABEL_MAX:
        problems.append(f"{field}.{kinds[0]}.text: longer than {RBM_LABEL_MAX}")
    postback = body.get("postbackData", "")
    if not isinstance(postback, str) or len(postback) > RBM_POSTBACK_MAX:
        problems.append(f"{field}.{kinds[0]}.postbackData: longer than {RBM_POSTBACK_MAX}")
    if kinds[0] == "action":
        actions = [
            key
            for key in (
                "dialAction",
                "viewLocationAction",
                "createCalendarEventAction",
                "openUrlAction",
                "shareLocationAction",
            )
            if key in body
        ]
        if len(actions) != 1:
            problems.append(f"{field}.action: exactly one action is required")
            return
        action = body[actions[0]]
        if actions[0] == "openUrlAction":
            _url(problems, f"{field}.action.openUrlAction.url", (action or {}).get("url"))
        elif actions[0] == "dialAction":
            if not E164.match(str((action or {}).get("phoneNumber", ""))):
                problems.append(f"{field}.action.dialAction.phoneNumber: E.164 required")
        elif actions[0] == "viewLocationAction":
            if not (action or {}).get("latLong") and not (action or {}).get("query"):
                problems.append(f"{field}.action.viewLocationAction: latLong or query required")
        elif actions[0] == "createCalendarEventAction":
            for key in ("startTime", "endTime", "title"):
                if not (action or {}).get(key):
                    problems.append(f"{field}.action.createCalendarEventAction.{key}: required")


def _suggestions(problems, field, items, limit):
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(f"{field}: must be a list")
        return
    if len(items) > limit:
        problems.append(f"{field}: {len(items)} suggestions, the limit is {limit}")
    for index, item in enumerate(items):
        _suggestion(problems, f"{field}[{index}]", item)


def _card_content(problems, field, card):
    if not isinstance(card, dict):
        problems.append(f"{field}: must be an object")
        return
    if not any(card.get(key) for key in ("title", "description", "media")):
        problems.append(f"{field}: title, description or media required")
    for key, limit in (("title", RBM_TITLE_MAX), ("description", RBM_DESCRIPTION_MAX)):
        value = card.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(f"{field}.{key}: longer than {limit}")
    media = card.get("media")
    if media is not None:
        if not isinstance(media, dict) or not isinstance(media.get("contentInfo"), dict):
            problems.append(f"{field}.media.contentInfo: required")
        else:
            _url(problems, f"{field}.media.contentInfo.fileUrl", media["contentInfo"].get("fileUrl"))
            if media.get("height", "MEDIUM") not in ("SHORT", "MEDIUM", "TALL", "HEIGHT_UNSPECIFIED"):
                problems.append(f"{field}.media.height: invalid")
    _suggestions(problems, f"{field}.suggestions", card.get("suggestions"), RBM_CARD_SUGGESTIONS_MAX)


def rbm_agent_message_problems(body) -> list[str]:
    """Problems with an AgentMessage request body (phones.agentMessages.create)."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    content = body.get("contentMessage")
    if not isinstance(content, dict):
        return ["contentMessage: required"]
    kinds = [key for key in ("text", "richCard", "contentInfo", "uploadedRbmFile") if key in content]
    if len(kinds) != 1:
        problems.append("contentMessage: exactly one of text, richCard, contentInfo, uploadedRbmFile")
    if "text" in content:
        text = content["text"]
        if not isinstance(text, str) or not text:
            problems.append("contentMessage.text: required")
        elif len(text) > RBM_TEXT_MAX:
            problems.append(f"contentMessage.text: {len(text)} characters, the limit is {RBM_TEXT_MAX}")
    if "contentInfo" in content:
        info = content["contentInfo"]
        _url(problems, "contentMessage.contentInfo.fileUrl", (info or {}).get("fileUrl") if isinstance(info, dict) else None)
    if "richCard" in content:
        card = content["richCard"]
        if not isinstance(card, dict) or len([k for k in ("standaloneCard", "carouselCard") if k in card]) != 1:
            problems.append("contentMessage.richCard: exactly one of standaloneCard, carouselCard")
        elif "standaloneCard" in card:
            _card_content(problems, "richCard.standaloneCard.cardContent", (card["standaloneCard"] or {}).get("cardContent"))
        else:
            carousel = card["carouselCard"] or {}
            contents = carousel.get("cardContents")
            if not isinstance(contents, list) or not RBM_CAROUSEL_MIN <= len(contents) <= RBM_CAROUSEL_MAX:
                problems.append(f"richCard.carouselCard.cardContents: {RBM_CAROUSEL_MIN} to {RBM_CAROUSEL_MAX} cards")
            else:
                for index, item in enumerate(contents):
                    _card_content(problems, f"richCard.carouselCard.cardContents[{index}]", item)
    _suggestions(problems, "contentMessage.suggestions", content.get("suggestions"), RBM_SUGGESTIONS_MAX)
    traffic = body.get("messageTrafficType")
    if traffic is not None and traffic not in TRAFFIC_TYPES:
        problems.append("messageTrafficType: unknown value")
    ttl = body.get("ttl")
    if ttl is not None and (not isinstance(ttl, str) or not _TTL.match(ttl)):
        problems.append("ttl: a duration such as '3600s' is required")
    if ttl is not None and body.get("expireTime") is not None:
        problems.append("only one of ttl, expireTime")
    return problems


def rbm_ttl_seconds(body) -> float | None:
    ttl = body.get("ttl")
    if isinstance(ttl, str) and ttl.endswith("s"):
        return float(ttl[:-1])
    return None


def cm_message_problems(msg) -> list[str]:
    """Problems with one element of messages.msg[]."""
    problems: list[str] = []
    if not isinstance(msg, dict):
        return ["msg: must be an object"]
    if not msg.get("from") or not isinstance(msg.get("from"), str):
        problems.append("from: required")
    to = msg.get("to")
    if not isinstance(to, list) or not to:
        problems.append("to: at least one recipient")
    else:
        for index, recipient in enumerate(to):
            number = (recipient or {}).get("number") if isinstance(recipient, dict) else None
            if not isinstance(number, str) or not CM_NUMBER.match(number):
                problems.append(f"to[{index}].number: use the 00-prefixed international form")
    channels = msg.get("allowedChannels") or ["SMS"]
    if not isinstance(channels, list) or not set(channels) <= CM_CHANNELS:
        problems.append("allowedChannels: unknown channel")
    body = msg.get("body")
    content = body.get("content") if isinstance(body, dict) else None
    if "SMS" in channels:
        if not isinstance(content, str) or not content:
            problems.append("body.content: required for SMS")
        elif len(content) > CM_SMS_MAX:
            problems.append(f"body.content: {len(content)} characters, the limit is {CM_SMS_MAX}")
    rich = msg.get("richContent")
    if rich is not None:
        if not isinstance(rich, dict) or not isinstance(rich.get("conversation", []), list):
            problems.append("richContent.conversation: must be a list")
        else:
            suggestions = rich.get("suggestions") or []
            if len(suggestions) > RBM_SUGGESTIONS_MAX:
                problems.append(f"richContent.suggestions: the limit is {RBM_SUGGESTIONS_MAX}")
            for index, item in enumerate(suggestions):
                label = (item or {}).get("label", "")
                if not isinstance(label, str) or len(label) > RBM_LABEL_MAX:
                    problems.append(f"richContent.suggestions[{index}].label: longer than {RBM_LABEL_MAX}")
    reference = msg.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 100):
        problems.append("reference: at most 100 characters")
    return problems
