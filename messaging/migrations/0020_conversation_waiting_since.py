from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill_waiting_since(apps, schema_editor):
    """An open conversation waits since the person's first message after the team's last answer."""
    Conversation = apps.get_model("messaging", "Conversation")
    ConversationMessage = apps.get_model("messaging", "ConversationMessage")
    last_answer = (
        ConversationMessage.objects.filter(conversation=OuterRef("pk"), direction="out", sent_by__isnull=False)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    open_ones = (
        Conversation.objects.filter(status="open", last_inbound_at__isnull=False)
        .annotate(last_answer_at=Subquery(last_answer))
        .values_list("pk", "last_answer_at")
    )
    for pk, last_answer_at in open_ones.iterator(chunk_size=2000):
        inbound = ConversationMessage.objects.filter(conversation_id=pk, direction="in")
        if last_answer_at is not None:
            inbound = inbound.filter(created_at__gt=last_answer_at)
        first = inbound.order_by("created_at").values_list("created_at", flat=True).first()
        if first is not None:
            Conversation.objects.filter(pk=pk).update(waiting_since=first)


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0019_merge_sms_gateway_and_carrier"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="waiting_since",
            field=models.DateTimeField(blank=True, null=True, verbose_name="waiting since"),
        ),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(("waiting_since__isnull", False)),
                fields=["organization", "waiting_since"],
                name="conversation_org_waiting",
            ),
        ),
        migrations.RunPython(backfill_waiting_since, migrations.RunPython.noop),
    ]
