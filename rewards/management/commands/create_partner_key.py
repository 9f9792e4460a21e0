"""Create a partner API key for set-up scripts: the partner is created if needed, the key is
printed once (only its hash is stored).

    python manage.py create_partner_key "Musterladen GmbH" --scopes members:read,purchases:write
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loyalty_site.models import Scope
from loyalty_site.services import partner_get_or_create, partner_key_create
from rewards.models import Store


class Command(BaseCommand):
    help = "Create an API key for a partner (created if needed) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("partner", help="The partner's name.")
        parser.add_argument("--scopes", default=",".join(Scope.values),
                            help=f"Comma-separated, from: {', '.join(Scope.values)}. Default: all.")
        parser.add_argument("--name", default="", help="A name for the key (default: the command and scopes).")
        parser.add_argument("--stores", default="", help="Comma-separated store codes the key is restricted to.")

    def handle(self, *args, **options):
        name = options["partner"].strip()
        if not name:
            raise CommandError("The partner's name must not be empty.")
        partner, created = partner_get_or_create(name=name)
        codes = [code.strip() for code in options["stores"].split(",") if code.strip()]
        stores = list(Store.objects.filter(partner=partner, code__in=codes))
        missing = set(codes) - {store.code for store in stores}
        if missing:
            raise CommandError(f"Unknown store codes for {partner}: {', '.join(sorted(missing))}")
        scopes = options["scopes"].split(",")
        try:
            key, raw = partner_key_create(partner=partner, scopes=scopes, stores=stores,
                                          name=options["name"] or "create_partner_key")
        except ValueError as error:
            raise CommandError(str(error)) from error
        if created:
            self.stderr.write(f"Created partner {partner.name} (id {partner.pk}).")
        self.stderr.write(f"Key {key.prefix} with scopes {', '.join(key.scopes)}. It is shown only this once:")
        self.stdout.write(raw)
