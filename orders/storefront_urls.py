"""The storefront API (``/api/v1/storefront/...`` on a storefront host)."""

urlpatterns: list = []
