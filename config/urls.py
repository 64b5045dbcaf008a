from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from accounts.views import passwords
from accounts.views import two_factor as views_two_factor
from campaigns.views import optout as views_optout
from console import health, metrics, views, views_audit, views_media, views_usage
from messaging import views_links

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # The password step, then (accounts.views.two_factor) the second step for members who use one.
    path("login/", views_two_factor.PasswordStepLoginView.as_view(), name="login"),
    path("login/two-factor/", views_two_factor.two_factor_verify, name="two_factor_verify"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", passwords.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", passwords.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(extra_context={"hide_shell": True}), name="password_reset_done"),
    path("password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(
        extra_context={"hide_shell": True}), name="password_reset_complete"),
    path("password/reset/<uidb64>/<token>/", passwords.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("messaging/", include("messaging.urls")),
    path("o/<str:token>/", views_optout.opt_out_page, name="opt_out"),
    path("usage/", views_usage.usage, name="usage"),
    path("usage/export.csv", views_usage.usage_export, name="usage_export"),
    # A tracked link in an SMS text (core.short_links): short, so no trailing slash is needed.
    re_path(r"^s/(?P<token>[0-9a-z]{1,40})/?$", views_links.short_link, name="short_link"),
    path("audit/", views_audit.audit_log, name="audit_log"),
    path("audit/export.csv", views_audit.audit_export, name="audit_export"),
    path("consent/<int:pk>/ledger.csv", views_optout.consent_ledger_export, name="consent_ledger"),
    path("consent/<int:pk>/opt-out/", views_optout.contact_opt_out_view, name="consent_opt_out"),
    path("consent/<int:pk>/erase/", views_optout.contact_erase_view, name="consent_erase"),
    path("consent/<int:pk>/disclosure.json", views_optout.contact_disclosure_export, name="contact_disclosure"),
    path("api/v1/", include("api.urls")),
    # Campaign media and logos only (carriers fetch the media); private files have views of their own.
    path(settings.MEDIA_URL.strip("/") + "/<path:path>", views_media.public_media, name="public_media"),
]
