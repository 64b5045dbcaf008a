from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Cast


def erased_at_from_the_audit_log(apps, schema_editor):
    """Contacts erased before this field existed: the time of their last "contact.erased" event."""
    Contact = apps.get_model("campaigns", "Contact")
    AuditEvent = apps.get_model("console", "AuditEvent")
    last_erasure = AuditEvent.objects.filter(
        action="contact.erased", target_type="campaigns.contact", target_id=Cast(OuterRef("pk"), models.CharField()),
    ).order_by("-occurred_at").values("occurred_at")[:1]
    erased_ids = AuditEvent.objects.filter(action="contact.erased", target_type="campaigns.contact").values_list(
        "target_id", flat=True
    )
    ids = [int(value) for value in erased_ids if value.isdigit()]
    Contact.objects.filter(pk__in=ids, erased_at__isnull=True).update(erased_at=Subquery(last_erasure))


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0005_contact_org_keyset'),
        ('console', '0002_audit_append_only'),
    ]

    operations = [
        migrations.AddField(
            model_name='contact',
            name='erased_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='erased at'),
        ),
        migrations.RunPython(erased_at_from_the_audit_log, migrations.RunPython.noop),
    ]
