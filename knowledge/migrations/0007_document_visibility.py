"""Documents are private until published: a ``visibility`` per document and the ``view_all_documents`` permission.

Before this, a document without groups was readable by every signed-in user and one with groups by their members:
existing rows keep exactly that (``all_users`` / ``groups``); only new documents start staff-only.
"""

from django.db import migrations, models


def keep_existing_access(apps, schema_editor) -> None:
    Document = apps.get_model("knowledge", "Document")
    restricted = Document.objects.filter(allowed_groups__isnull=False).values_list("pk", flat=True).distinct()
    Document.objects.filter(pk__in=list(restricted)).update(visibility="groups")
    Document.objects.exclude(pk__in=list(restricted)).update(visibility="all_users")


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("knowledge", "0006_ocr_sources_incremental"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="visibility",
            field=models.CharField(
                choices=[("staff", "Staff only"), ("groups", "Selected groups"), ("all_users", "All signed-in users")],
                db_index=True,
                default="staff",
                max_length=16,
            ),
        ),
        migrations.AlterModelOptions(
            name="document",
            options={
                "ordering": ["-created_at"],
                "permissions": [("view_all_documents", "Can read every document, whatever its visibility")],
            },
        ),
        migrations.RunPython(keep_existing_access, migrations.RunPython.noop),
    ]
