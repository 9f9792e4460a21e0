import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.local")
django.setup(set_prefix=False)

from loyalty_site.handlers import routed_application  # noqa: E402 - needs the settings above

application = routed_application()
