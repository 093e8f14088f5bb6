from __future__ import annotations

from django.urls import path

from knowledge import views

app_name = "knowledge"
urlpatterns = [
    path("documents/<int:document_id>/", views.document_detail, name="document"),
    path("documents/<int:document_id>/file", views.document_file, name="document-file"),
]
