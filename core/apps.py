"""Shared machinery every app may use; it imports no app of ours (checked by import-linter)."""
from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from .roles import ensure_group_permissions

        # Without a sender: runs after each app's migrate, so later apps' permissions land too.
        post_migrate.connect(ensure_group_permissions, dispatch_uid="loyalty_group_permissions")
