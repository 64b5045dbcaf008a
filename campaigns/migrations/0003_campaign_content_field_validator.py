import django.db.models
import core.rich_content
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_engine_state")]

    operations = [
        migrations.AlterField(
            model_name="campaign",
            name="content",
            field=django.db.models.JSONField(
                default=dict,
                validators=[core.rich_content.validate_rich_content_field],
                verbose_name="+Message content",
            ),
        ),
    ]
