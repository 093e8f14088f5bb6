from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from protostar import views
from protostar.api.main import api, openai_api
from protostar.metrics import views as metrics_views

admin.site.site_header = _("Protostar administration")
admin.site.site_title = "Protostar"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", api.urls),
    path("v1/", openai_api.urls),
    # The language switcher posts here (Django's set_language: it sets the language cookie and redirects back).
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("knowledge.urls")),
    path("", include("chat.urls")),
]
