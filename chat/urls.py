from __future__ import annotations

from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/<int:conversation_id>/", views.home, name="conversation"),
    path("conversations/<int:conversation_id>/messages", views.conversation_messages, name="messages"),
    path("conversations/<int:conversation_id>/rename", views.conversation_rename, name="rename"),
    path("conversations/<int:conversation_id>/delete", views.conversation_delete, name="delete"),
    path("conversations/<int:conversation_id>/export.md", views.conversation_export, name="export"),
    path("conversations/search", views.conversation_search, name="search"),
]
