"""The admin's AppConfig, pointing Django at the platform's admin site (config/admin_site.py).

Kept apart from the site itself: Django imports this module before the models are ready."""

from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    default_site = "config.admin_site.PlatformAdminSite"
