"""The inbox: conversations with unread counts and filters, the thread both ways, replies, quick
replies, assignment, done — and the tracked-link redirect. Operators and above (permission
``operate``); every query is scoped to request.organization, so another organization's ids answer 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, ProtectedError, Q
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import member_required
from accounts.models import Membership, Role
from accounts.notifications import notifications_read_for
from campaigns.models import Campaign, Consent
from campaigns.optout import OptOutMethod, contact_opt_out
from core.paging import sorted_page
from core.phone import mobile_search_key, national_format
from core.private_files import private_file_response
from messaging import inbox, links
from messaging.models import (
    Conversation,
    ConversationMessage,
    ConversationStatus,
    Delivery,
    MediaStatus,
    QuickReply,
)

PAGE_SIZE = 50
CONVERSATION_SORTS = {"recent": "recent"}
UNANSWERED_SORTS = {"waiting": "waiting_since"}  # the longest wait first
FILTERS = ("all", "unread", "unanswered", "mine", "opted_out", "done")


def _operators(request) -> list:
    """The members who may answer (and be assigned) conversations."""
    memberships = (
        Membership.objects.filter(organization=request.organization, role__in=[Role.OWNER, Role.ADMIN, Role.OPERATOR])
        .select_related("user")
        .order_by("user__username")
    )
    return [membership.user for membership in memberships]


def _search(conversations, text: str):
    """By name, or by number in any way people write it (090-…, ０９０…, +81 90…, the last digits)."""
    matches = Q(contact__name__icontains=text)
    key = mobile_search_key(text)
    if key is not None:
        how, value = key
        matches |= Q(contact__phone__startswith=value) if how == "prefix" else Q(contact__phone__contains=value)
    return conversations.filter(matches)


def _conversations(request):
    conversations = Conversation.objects.filter(organization=request.organization).select_related(
        "contact", "official_account", "assigned_to", "last_campaign"
    )
    show = request.GET.get("show", "all")
    search = request.GET.get("q", "").strip()[:100]
    assignee = request.GET.get("assignee", "")
    if assignee == "me":
        conversations = conversations.filter(assigned_to=request.user)
    elif assignee == "none":
        conversations = conversations.filter(assigned_to__isnull=True)
    elif assignee.isdigit():
        conversations = conversations.filter(assigned_to_id=int(assignee))
    if search:
        conversations = _search(conversations, search)
    campaign = request.GET.get("campaign", "")
    if campaign.isdigit():
        chosen = int(campaign)  # a recurring campaign's replies are credited to its runs
        answered = ConversationMessage.objects.filter(conversation=OuterRef("pk")).filter(
            Q(campaign_id=chosen) | Q(campaign__parent_id=chosen)
        )
        conversations = conversations.filter(Exists(answered))
    if show == "unanswered":  # ordered by the wait (UNANSWERED_SORTS)
        return conversations.filter(status=ConversationStatus.OPEN, waiting_since__isnull=False)
    if show == "unread":
        conversations = conversations.filter(unread_count__gt=0)
    elif show == "mine":
        conversations = conversations.filter(assigned_to=request.user)
    elif show == "opted_out":
        conversations = conversations.filter(contact__opted_out_at__isnull=False)
    elif show == "done":
        conversations = conversations.filter(status=ConversationStatus.DONE)
    elif not search:  # a search finds done conversations too
        conversations = conversations.filter(status=ConversationStatus.OPEN)
    # The newest message first; a conversation opened a moment before its first message has none yet.
    return conversations.annotate(recent=Coalesce("last_message_at", "created_at"))


def _list_context(request, current=None) -> dict:
    show = request.GET.get("show", "all")
    campaign = request.GET.get("campaign", "")
    search = request.GET.get("q", "").strip()[:100]
    assignee = request.GET.get("assignee", "")
    filters = (("show", show), ("campaign", campaign), ("q", search), ("assignee", assignee))
    query = {key: value for key, value in filters if value and value != "all"}
    if show == "unanswered":
        page = sorted_page(_conversations(request), request.GET, sorts=UNANSWERED_SORTS, default="waiting",
                           size=PAGE_SIZE)
    else:
        page = sorted_page(_conversations(request), request.GET, sorts=CONVERSATION_SORTS, default="-recent",
                           size=PAGE_SIZE)
    cursor = {key: request.GET[key] for key in ("after", "before", "page") if request.GET.get(key)}
    oldest = inbox.oldest_waiting(request.organization)
    return {
        "conversations": [(c, national_format(c.contact.phone)) for c in page.rows],
        "page": page,
        "page_query": urlencode(cursor),  # the list's poll stays on its page
        "current": current,
        "show": show if show in FILTERS else "all",
        "campaign_filter": campaign,
        "search": search,
        "assignee": assignee,
        "assignees": _operators(request),
        "oldest_waiting": oldest,
        "oldest_waiting_phone": national_format(oldest.contact.phone) if oldest else "",
        "tab_query": urlencode({key: value for key, value in query.items() if key != "show"}),
        "campaigns": Campaign.objects.filter(organization=request.organization, parent__isnull=True)
        .order_by("-created_at")
        .only("id", "name")[:100],
        "filter_query": urlencode(query),
        "filters": [
            ("all", _("Open")), ("unread", _("Unread")), ("unanswered", _("Unanswered")), ("mine", _("Assigned to me")),
            ("opted_out", _("Opted out")), ("done", _("Done")),
        ],
    }


def _conversation_or_404(request, pk) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("contact", "official_account", "assigned_to"),
        pk=pk,
        organization=request.organization,
    )


def _thread_context(request, conversation) -> dict:
    thread = list(
        ConversationMessage.objects.filter(conversation=conversation)
        .select_related("delivery", "campaign", "sent_by")
        .order_by("created_at", "id")
    )
    return {
        "conversation": conversation,
        "phone_display": national_format(conversation.contact.phone),
        "thread": thread,
        "last_id": thread[-1].pk if thread else 0,
        "quick_replies": QuickReply.objects.filter(organization=request.organization),
        "operators": _operators(request),
    }


def _contact_panel_context(request, conversation) -> dict:
    """The side panel: the person's consent, lists and last campaigns."""
    contact = conversation.contact
    return {
        "panel_consents": list(
            Consent.objects.filter(organization=request.organization, contact=contact).order_by("-granted_at")[:3]
        ),
        "panel_has_active_consent": Consent.objects.filter(
            organization=request.organization, contact=contact, revoked_at__isnull=True
        ).exists(),
        "panel_lists": list(contact.lists.filter(organization=request.organization).order_by("name")[:20]),
        "panel_deliveries": list(
            Delivery.objects.filter(organization=request.organization, contact=contact, campaign__isnull=False)
            .select_related("campaign")
            .order_by("-id")[:5]
        ),
    }


@member_required("operate")
@require_GET
def inbox_index(request):
    context = _list_context(request)
    template = "inbox/inbox.html"
    if request.htmx and request.htmx.target == "conversation-list":
        template += "#conversation-list"
    return render(request, template, context)


@member_required("operate")
@require_GET
def conversation_detail(request, pk):
    conversation = _conversation_or_404(request, pk)
    inbox.conversation_open(conversation, request.user)
    notifications_read_for(request.user, request.organization, request.path)  # "assigned to you", seen
    context = {
        **_list_context(request, current=conversation),
        **_thread_context(request, conversation),
        **_contact_panel_context(request, conversation),
    }
    return render(request, "inbox/inbox.html", context)


@member_required("operate")
@require_GET
def conversation_list_partial(request):
    current = request.GET.get("current", "")
    context = _list_context(request)
    context["current_id"] = int(current) if current.isdigit() else None
    return render(request, "inbox/inbox.html#conversation-list", context)


@member_required("operate")
@require_GET
def thread_partial(request, pk):
    """Polled while the thread is open: new messages and status changes; marks new ones read."""
    conversation = _conversation_or_404(request, pk)
    if conversation.unread_count:
        inbox.conversation_open(conversation, request.user)
    return render(request, "inbox/inbox.html#thread-messages", _thread_context(request, conversation))


@member_required("operate")
@require_POST
def conversation_reply(request, pk):
    conversation = _conversation_or_404(request, pk)
    text = request.POST.get("text", "")
    error = ""
    try:
        inbox.inbox_reply(conversation, request.user, text, request=request)
    except ValidationError as problem:
        error = "; ".join(problem.messages)
    if request.htmx:
        context = _thread_context(request, conversation)
        context["reply_error"] = error
        return render(request, "inbox/inbox.html#thread-messages", context)
    if error:
        flash.error(request, error)
    return redirect("messaging:inbox_conversation", pk=conversation.pk)


@member_required("operate")
@require_POST
def conversation_assign(request, pk):
    conversation = _conversation_or_404(request, pk)
    user_id = request.POST.get("user", "")
    user = None
    if user_id == "me":
        user = request.user
    elif user_id.isdigit():
        membership = Membership.objects.filter(
            organization=request.organization, user_id=int(user_id), role__in=[Role.OWNER, Role.ADMIN, Role.OPERATOR]
        ).select_related("user").first()
        if membership is None:
            raise Http404
        user = membership.user
    inbox.conversation_assign(conversation, user, actor=request.user)
    if user is not None:
        flash.success(request, _("Assigned to %(name)s.") % {"name": user.get_username()})
    else:
        flash.success(request, _("Unassigned."))
    return redirect("messaging:inbox_conversation", pk=conversation.pk)


@member_required("operate")
@require_POST
def conversation_status(request, pk):
    conversation = _conversation_or_404(request, pk)
    status = request.POST.get("status", ConversationStatus.DONE)
    try:
        inbox.conversation_set_status(conversation, status)
    except ValidationError:
        raise Http404 from None
    if status == ConversationStatus.DONE:
        flash.success(request, _("Marked as done."))
        return redirect("messaging:inbox")
    flash.success(request, _("Reopened."))
    return redirect("messaging:inbox_conversation", pk=conversation.pk)


@member_required("operate")
@require_POST
def conversation_opt_out(request, pk):
    """Opt the person out from their conversation (confirmed in a dialog first), through the same
    service as every other opt-out; they get the confirmation message if the member chose it."""
    conversation = _conversation_or_404(request, pk)
    if contact_opt_out(
        conversation.contact, OptOutMethod.CONSOLE, f"inbox:{request.user.get_username()}",
        official_account=conversation.official_account, actor=request.user, request=request,
        confirm=request.POST.get("send_confirmation") == "on",
    ):
        flash.success(request, _("The person was opted out of promotional messages."))
    else:
        flash.info(request, _("This person had already opted out."))
    return redirect("messaging:inbox_conversation", pk=conversation.pk)


@member_required("operate")
def quick_replies(request):
    if request.method == "POST":
        if request.POST.get("delete", "").isdigit():
            try:
                QuickReply.objects.filter(organization=request.organization, pk=int(request.POST["delete"])).delete()
            except ProtectedError:
                flash.error(request, _("A keyword rule replies with this quick reply: change or delete the rule first."))
            else:
                flash.success(request, _("The quick reply was deleted."))
            return redirect("messaging:inbox_quick_replies")
        title = request.POST.get("title", "").strip()[:60]
        text = request.POST.get("text", "").strip()[:1000]
        if not title or not text:
            flash.error(request, _("A quick reply needs a title and a text."))
        else:
            QuickReply.objects.update_or_create(organization=request.organization, title=title, defaults={"text": text})
            flash.success(request, _("The quick reply was saved."))
        return redirect("messaging:inbox_quick_replies")
    return render(
        request, "inbox/quick_replies.html", {"quick_replies": QuickReply.objects.filter(organization=request.organization)}
    )


# Extensions a download may carry (from the type the sender declared); anything else is ".bin", so
# a file declared as HTML or SVG is never saved as one.
DOWNLOAD_EXTENSIONS = {
    "application/pdf": ".pdf", "video/mp4": ".mp4", "video/3gpp": ".3gp", "video/quicktime": ".mov",
    "video/webm": ".webm", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr", "audio/mpeg": ".mp3",
    "text/vcard": ".vcf", "text/x-vcard": ".vcf", "image/jpeg": ".jpg", "image/png": ".png",
    "image/gif": ".gif", "image/webp": ".webp", "image/heic": ".heic",
}


@member_required("operate")
@require_GET
def message_media(request, pk):
    """A stored inbound file from private storage, as an attachment: an image re-encoded when it was
    stored (``<img>`` still shows it), anything else as opaque bytes named by its declared type."""
    message = get_object_or_404(
        ConversationMessage, pk=pk, conversation__organization=request.organization
    )
    if message.media_status != MediaStatus.STORED or not message.file:
        return HttpResponse(status=204)  # nothing stored (yet, or refused): no content to show
    if message.file_is_image:
        content_type = message.file_mime
    else:
        content_type = "application/octet-stream"
    extension = DOWNLOAD_EXTENSIONS.get(message.file_mime, ".bin")
    return private_file_response(message.file, filename=f"received-{message.pk}{extension}", content_type=content_type)


def tracked_link(request, token):
    """A tracked button link: record the click, then go on to the campaign's own http/https URL."""
    url = request.GET.get("u", "")
    found = links.tracked_link_target(token, url)
    if found is None:
        raise Http404
    campaign, contact_id, target = found
    links.link_click_record(campaign, contact_id)
    response = HttpResponseRedirect(target)
    response["Referrer-Policy"] = "no-referrer"
    return response
