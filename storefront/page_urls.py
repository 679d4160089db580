"""The diner's pages on a storefront host."""

app_name = "storefront"

urlpatterns: list = []
