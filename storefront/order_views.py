"""The order's status page (the browser polls the storefront API for changes)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse

from orders.models import Order, Status
from storefront.base import StorefrontView, day_words

ORDER_STEPS = [
    Status.PLACED,
    Status.ACCEPTED,
    Status.PREPARING,
    Status.READY,
    Status.COMPLETED,
]
FINAL_STATUSES = {Status.COMPLETED, Status.CANCELLED}


def order_steps(status: str) -> list[dict[str, Any]]:
    reached = ORDER_STEPS.index(Status(status)) if status in ORDER_STEPS else -1
    return [
        {
            "status": str(step),
            "label": step.label,
            "state": "done" if index < reached else "current" if index == reached else "todo",
        }
        for index, step in enumerate(ORDER_STEPS)
    ]


class OrderView(StorefrontView):
    template_name = "storefront/order.html"
    cache_control = "private, no-store"

    def get(self, request: HttpRequest, public_id: Any) -> HttpResponse:
        order = Order.objects.filter(public_id=public_id).prefetch_related("lines").first()
        if order is None:
            raise Http404("No such order.")
        return self.page(
            request,
            order=order,
            steps=order_steps(order.status),
            final=order.status in FINAL_STATUSES,
            promised_day=day_words(
                order.promised_at.astimezone(self.restaurant.zone).date(), self.today()
            ),
            status_url=f"/api/v1/storefront/orders/{order.public_id}",
        )
