"""Staff API routes for orders (included under /api/v1/)."""

urlpatterns: list = []
