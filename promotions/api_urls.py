"""Staff API routes for promotions (included under /api/v1/)."""

urlpatterns: list = []
