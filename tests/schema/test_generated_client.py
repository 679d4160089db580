"""A Python client generated from the document the API serves, driving the API as an
integrator would.

``openapi-python-client`` reads ``/api/v1/schema/`` from a live test server (offline: the
document is a file, and no formatter runs on the output) and writes a package into the
test's temporary directory; nothing generated is kept. With an API key an Owner created
(orders and menus written), the generated functions list orders by status to the last page,
create an item, publish the menu, mark the item sold out, place an order on the storefront
host and read it back, and every answer must parse into the generated models: a field the
document declares wrongly (a type, a missing ``nullable``, a required field the API leaves
out) fails here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from menus.models import Category
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import make_api_key, make_restaurant, make_shop, open_all_week

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "nordkestrel_client"
# No post-generation hooks: by default the generator runs ruff from PATH on its output,
# which the package does not need to be imported.
CONFIG: dict[str, list[str]] = {"post_hooks": []}
PAGE_SIZE = 2

pytestmark = pytest.mark.usefixtures("transactional_db")


def _fetch_schema(base_url: str) -> dict[str, Any]:
    response = httpx.get(
        f"{base_url}/api/v1/schema/", headers={"Accept": "application/json"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def _generate(document: dict[str, Any], directory: Path) -> str:
    """Writes the client package into ``directory``; returns what the generator printed."""
    schema, config = directory / "schema.json", directory / "config.json"
    schema.write_text(json.dumps(document))
    config.write_text(json.dumps(CONFIG))
    finished = subprocess.run(
        [
            str(GENERATOR), "generate",
            "--path", str(schema),
            "--output-path", str(directory / PACKAGE),
            "--meta", "none",
            "--config", str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    return output


@pytest.fixture
def generated(live_server, tmp_path, monkeypatch) -> Iterator[tuple[ModuleType, dict[str, Any]]]:
    """The generated package, importable, and the document it was generated from."""
    document = _fetch_schema(live_server.url)
    output = _generate(document, tmp_path)
    # The generator lists what it could not express (a schema it skipped, a clash of names)
    # as warnings; the document must give it none.
    assert "Warning" not in output, output
    monkeypatch.syspath_prepend(str(tmp_path))
    package = importlib.import_module(PACKAGE)
    yield package, document
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


class _Body:
    """A generated request model as the API takes it: without the fields the document marks
    read-only. While a serializer's one component describes both its answers and its
    bodies, the generated model requires those fields and would send them back (refused:
    "This field cannot be set"); with request components of their own it sends as is."""

    def __init__(self, model: Any, read_only: frozenset[str]) -> None:
        self.model = model
        self.read_only = read_only

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.to_dict().items() if k not in self.read_only}


PLACEHOLDERS = {"integer": 0, "number": 0, "string": "", "boolean": False, "array": []}


def body(document: dict[str, Any], operation: ModuleType, **values: Any) -> _Body:
    """The body of ``operation`` (a generated module) holding ``values``, built with the
    model the generated function expects."""
    model = typing.get_type_hints(operation.sync_detailed)["body"]
    component = document["components"]["schemas"][model.__name__]
    properties = component.get("properties", {})
    read_only = frozenset(name for name, p in properties.items() if p.get("readOnly"))
    placeholders = {
        name: PLACEHOLDERS.get(properties[name].get("type", "string"), "")
        for name in read_only & set(component.get("required", []))
    }
    return _Body(model.from_dict({**placeholders, **values}), read_only)


@pytest.fixture
def restaurant_with_orders():
    """A restaurant open now with a published menu and three orders placed at checkout."""
    restaurant = make_restaurant("generated")
    make_restaurant("generated-elsewhere")
    open_all_week(restaurant, "00:00", "23:59")
    shop = make_shop(restaurant)
    now = datetime.now(UTC) + timedelta(minutes=1)
    with tenant_context(restaurant):
        for number in range(3):
            cart = {
                "lines": [{"item_id": shop["fries"], "quantity": number + 1}],
                "name": "Diner",
                "email": f"diner{number}@example.com",
            }
            place_order(
                restaurant=restaurant,
                request=parse_checkout(cart, restaurant.zone),
                idempotency_key=f"generated-client-{number}",
                now=now,
            )
        mains = Category.objects.get(name="Mains")
    return restaurant, shop, mains.pk


def _cursor(next_url: Any) -> str | None:
    if not isinstance(next_url, str):
        return None
    [cursor] = parse_qs(urlsplit(next_url).query)["cursor"]
    return cursor


@pytest.fixture
def clients(live_server, generated, restaurant_with_orders):
    """The operator's client, holding an API key of the Owner's, and the diner's, on the
    restaurant's storefront host. Both are closed after the test: an idle keep-alive
    connection would hold a live server thread, and its database connection, open."""
    package, _ = generated
    restaurant, shop, _ = restaurant_with_orders
    secret = make_api_key(shop["owner"], {"orders": "write", "menus": "write"})
    host = f"{restaurant.slug}.{urlsplit(live_server.url).netloc}"
    with (
        package.AuthenticatedClient(base_url=live_server.url, token=secret) as operator,
        package.Client(base_url=live_server.url, headers={"Host": host}) as diner,
    ):
        yield operator, diner


def test_a_generated_client_drives_the_api_with_an_api_key(
    generated, restaurant_with_orders, clients
):
    _, document = generated
    _, _, mains = restaurant_with_orders
    operator, diner = clients
    ops = {
        name: importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")
        for tag, name in [
            ("items", "items_create"),
            ("items", "items_sold_out_create"),
            ("menus", "menus_publish_create"),
            ("orders", "orders_list"),
            ("orders", "orders_retrieve"),
            ("orders", "orders_status_create"),
            ("storefront", "storefront_menu"),
            ("storefront", "storefront_checkout"),
        ]
    }

    # An item in the menu's category, then the menu published with it.
    created = ops["items_create"].sync_detailed(
        client=operator,
        body=body(
            document, ops["items_create"],
            name="Lingonberry pie", price=650, description="Warm, with vanilla sauce",
            categories=[mains],
        ),
    )  # fmt: skip
    assert created.status_code == 201, created.content
    item = created.parsed
    assert (item.name, item.price, item.sold_out, item.categories) == (
        "Lingonberry pie", 650, False, [mains]
    )  # fmt: skip
    published = ops["menus_publish_create"].sync_detailed(client=operator)
    assert published.status_code == 201, published.content
    assert [added.name for added in published.parsed.changes.added] == ["Lingonberry pie"]

    # The diner sees it on the storefront host and orders it there.
    menu = ops["storefront_menu"].sync_detailed(client=diner)
    assert menu.status_code == 200, menu.content
    assert menu.parsed.items[str(item.id)].name == "Lingonberry pie"
    placed = ops["storefront_checkout"].sync_detailed(
        client=diner,
        idempotency_key="generated-client-pie",
        body=body(
            document, ops["storefront_checkout"],
            lines=[{"item_id": item.id, "quantity": 2}],
            name="Ada", email="ada@example.com",
        ),
    )  # fmt: skip
    assert placed.status_code == 201, placed.content
    order = placed.parsed
    assert (order.status.value, order.totals.subtotal) == ("placed", 1300)

    # Sold out from now on: the storefront says so.
    sold_out = ops["items_sold_out_create"].sync_detailed(
        item.id, client=operator, body=body(document, ops["items_sold_out_create"], sold_out=True)
    )
    assert sold_out.status_code == 200, sold_out.content
    assert sold_out.parsed.sold_out is True
    menu = ops["storefront_menu"].sync_detailed(client=diner)
    assert item.id in menu.parsed.sold_out.items

    # One of the earlier orders accepted, so the status filter has something to leave out.
    oldest_first = importlib.import_module(f"{PACKAGE}.models").OrdersListOrdering("created_at")
    first = ops["orders_list"].sync_detailed(client=operator, ordering=oldest_first)
    assert first.status_code == 200, first.content
    accepted = first.parsed.results[0]
    moved = ops["orders_status_create"].sync_detailed(
        accepted.id,
        client=operator,
        body=body(document, ops["orders_status_create"], status="accepted"),
    )
    assert moved.status_code == 200, moved.content
    assert moved.parsed.status.value == "accepted"

    # Every placed order, two a page, following the cursor to the last page.
    pages: list[list[Any]] = []
    cursor = importlib.import_module(f"{PACKAGE}.types").UNSET
    while True:
        page = ops["orders_list"].sync_detailed(
            client=operator, status=["placed"], page_size=PAGE_SIZE, cursor=cursor
        )
        assert page.status_code == 200, page.content
        pages.append(page.parsed.results)
        following = _cursor(page.parsed.next_)
        if following is None:
            break
        cursor = following
        assert len(pages) < 10, "the cursor never ends"
    listed = [order for results in pages for order in results]
    assert [len(results) for results in pages] == [2, 1]
    assert {o.status.value for o in listed} == {"placed"}
    assert accepted.id not in {o.id for o in listed}
    assert order.number in {o.number for o in listed}
    assert len({o.id for o in listed}) == 3

    # The storefront's order, read back through the operator API with the key.
    [ours] = [o for o in listed if o.number == order.number]
    detail = ops["orders_retrieve"].sync_detailed(ours.id, client=operator)
    assert detail.status_code == 200, detail.content
    read = detail.parsed
    assert (read.number, read.status.value, read.total) == (
        order.number, "placed", order.totals.total
    )  # fmt: skip
    assert [(line.name, line.quantity, line.line_total) for line in read.lines] == [
        ("Lingonberry pie", 2, 1300)
    ]
