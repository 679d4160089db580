import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nordkestrel.settings")
# A web process: the short database timeouts (nordkestrel/database.py).
os.environ.setdefault("NORDKESTREL_PROCESS", "web")

application = get_asgi_application()
