"""Staff API routes for customers (included under /api/v1/)."""

urlpatterns: list = []
