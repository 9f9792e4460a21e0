"""Create a partner API key for set-up scripts: the partner is created if needed, the key is
printed once (only its hash is stored).

    python manage.py create_partner_key "Musterladen GmbH" --scopes members:read,purchases:write

Bad input (an unknown scope or store code, no name) creates nothing and exits with status 1.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from partners.models import Scope
from partners.services import partner_key_issue


class Command(BaseCommand):
    help = "Create an API key for a partner (created if needed) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("partner", help="The partner's name.")
        parser.add_argument("--scopes", default=",".join(Scope.values),
                            help=f"Comma-separated, from: {', '.join(Scope.values)}. Default: all.")
        parser.add_argument("--name", default="", help="A name for the key (default: the command and scopes).")
        parser.add_argument("--stores", default="", help="Comma-separated store codes the key is restricted to.")

    def handle(self, *args, **options):
        try:
            issued = partner_key_issue(partner_name=options["partner"], scopes=options["scopes"].split(","),
                                       store_codes=options["stores"].split(","), name=options["name"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        key = issued.key
        if issued.partner_created:
            self.stderr.write(f"Created partner {key.partner.name} (id {key.partner.pk}).")
        self.stderr.write(f"Key {key.prefix} with scopes {', '.join(key.scopes)}. It is shown only this once:")
        self.stdout.write(issued.raw)
