from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from protostar import views
from protostar.metrics import views as metrics_views

admin.site.site_header = "Protostar administration"
admin.site.site_title = "Protostar"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("knowledge.urls")),
    path("", include("chat.urls")),
]
