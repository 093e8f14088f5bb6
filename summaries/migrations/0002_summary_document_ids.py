"""Each memory version records the documents its answers cited, so a version quoting a document its owner lost can be
set aside. Existing versions get the documents cited by every answer up to the end of their range."""

import django.contrib.postgres.fields
from django.db import migrations, models


def backfill(apps, schema_editor) -> None:
    ConversationSummary = apps.get_model("summaries", "ConversationSummary")
    Message = apps.get_model("chat", "Message")
    for summary in ConversationSummary.objects.all().iterator():
        cited: set[int] = set()
        answers = Message.objects.filter(
            conversation_id=summary.conversation_id, role="assistant", pk__lte=summary.covers_to_message_id
        ).values_list("sources", flat=True)
        for sources in answers:
            cited.update(item["document_id"] for item in sources or [] if item.get("document_id") is not None)
        if cited:
            summary.document_ids = sorted(cited)
            summary.save(update_fields=["document_ids"])


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0003_message_retrieval_query"),
        ("summaries", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversationsummary",
            name="document_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(), blank=True, default=list, size=None
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
