"""The webhook pages: the list and the form to add an endpoint (its secret shown once), one
endpoint's page (edit, enable, rotate, delete, a test event, send again, recover) and its
delivery log."""

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from staff.auth import Actor
from staff.roles import Scope
from tenants.context import tenant_context
from tests.factories import token_for
from tests.support.webhook_receiver import Reply
from tests.webhooks.conftest import send_due
from webhooks import services
from webhooks.models import Attempt, Delivery, Endpoint

PAGE = "/dashboard/webhooks"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")
HOOK_URL = "https://hooks.example.com/in"


def signed_in(member):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


def add(client, **fields):
    data = {"url": HOOK_URL, "description": "Till", "enabled": "on", **fields}
    return client.post(PAGE, data)


def secret_in(response) -> str:
    found = SECRET.findall(response.content.decode())
    assert len(set(found)) == 1, found
    return found[0]


def endpoints(restaurant):
    with tenant_context(restaurant):
        return list(Endpoint.objects.order_by("id"))


def make_endpoint(member, url=HOOK_URL, **fields):
    with tenant_context(member.restaurant):
        return services.endpoint_create(actor=Actor(member=member), url=url, **fields).endpoint


def make_delivery(endpoint, **fields):
    with tenant_context(endpoint.restaurant):
        return Delivery.objects.create(
            endpoint=endpoint,
            event_type=fields.pop("event_type", "order.placed"),
            message_id=fields.pop("message_id", f"msg_{uuid.uuid4().hex}"),
            **fields,
        )


def field_block(body: str, name: str) -> str:
    """The form field's markup (label, input, help, errors) around ``name="<name>"``."""
    at = body.index(f'name="{name}"')
    start = body.rindex('<div class="field', 0, at)
    return body[start : body.index("</div>", at)]


@pytest.mark.django_db
def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    form = client.get(PAGE)
    assert form.status_code == 200
    body = form.content.decode()
    assert 'data-testid="create-endpoint-form"' in body
    assert "<legend>Order</legend>" in body and "<legend>Menu</legend>" in body
    assert 'value="order.placed"' in body and 'value="customer.created"' in body
    assert "No webhook endpoints yet." in body

    response = add(client, event_types=["order.placed", "order.cancelled"])

    # The answer to the POST itself carries the secret: no redirect, never stored.
    assert response.status_code == 200
    assert "Location" not in response
    assert "no-store" in response["Cache-Control"]
    secret = secret_in(response)
    body = response.content.decode()
    assert "it is shown only now" in body
    assert 'data-copy-target="webhook-secret"' in body
    assert "dashboard/apikeys.js" in body
    [endpoint] = endpoints(owner.restaurant)
    assert endpoint.secret == secret
    assert (endpoint.url, endpoint.description) == (HOOK_URL, "Till")
    assert endpoint.event_types == ["order.placed", "order.cancelled"]
    assert endpoint.enabled and endpoint.created_by_id == owner.pk
    assert secret not in str(dict(client.session))

    listed = client.get(PAGE).content.decode()
    assert SECRET.search(listed) is None
    assert HOOK_URL in listed and "order.cancelled" in listed
    assert "1 of at most 10 endpoints" in listed
    detail = client.get(f"{PAGE}/{endpoint.pk}").content.decode()
    assert SECRET.search(detail) is None


@pytest.mark.django_db
def test_no_event_type_ticked_means_all_events_and_unticked_enabled_adds_it_off(roster):
    admin = roster[("ours", "admin")]
    client = signed_in(admin)
    assert add(client, enabled="").status_code == 200
    [endpoint] = endpoints(admin.restaurant)
    assert endpoint.event_types == [] and not endpoint.enabled
    listed = client.get(PAGE).content.decode()
    assert "All events" in listed
    assert "Disabled by staff or an integrator" in listed


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_below_admin_the_pages_are_refused(roster, role):
    theirs = make_endpoint(roster[("ours", "owner")])
    delivery = make_delivery(theirs, status=Delivery.Status.FAILED)
    client = signed_in(roster[("ours", role)])

    page = client.get(PAGE)
    assert page.status_code == 403
    assert "Your role does not give access to this page." in page.content.decode()
    assert add(client).status_code == 403
    assert client.get(f"{PAGE}/{theirs.pk}").status_code == 403
    assert client.post(f"{PAGE}/{theirs.pk}/test").status_code == 403
    assert client.post(f"{PAGE}/{theirs.pk}/rotate").status_code == 403
    assert client.post(f"{PAGE}/{theirs.pk}/delete").status_code == 403
    assert client.post(f"{PAGE}/deliveries/{delivery.pk}/resend").status_code == 403
    [endpoint] = endpoints(theirs.restaurant)
    assert endpoint.secret == theirs.secret
    with tenant_context(theirs.restaurant):
        assert Delivery.objects.count() == 1
    assert f'href="{PAGE}"' not in client.get("/dashboard/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_have_the_nav_entry_after_api_keys(roster, role):
    home = signed_in(roster[("ours", role)]).get("/dashboard/").content.decode()
    assert f'href="{PAGE}"' in home
    assert home.index('href="/dashboard/api-keys"') < home.index(f'href="{PAGE}"')


@pytest.mark.django_db
def test_refusals_are_shown_next_to_their_fields(roster, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    owner = roster[("ours", "owner")]
    client = signed_in(owner)

    plain_http = add(client, url="http://127.0.0.1:8000/hooks")
    assert plain_http.status_code == 400
    body = plain_http.content.decode()
    assert "Webhook URLs use https." in field_block(body, "url")
    assert SECRET.search(body) is None
    assert 'value="http://127.0.0.1:8000/hooks"' in body

    private = add(client, url="https://10.0.0.8/hooks")
    assert private.status_code == 400
    assert "a private address" in field_block(private.content.decode(), "url")

    unknown = add(client, event_types=["order.placed", "order.eaten"])
    assert unknown.status_code == 400
    block = unknown.content.decode().split('data-testid="event-types"', 1)[1]
    assert "Select a valid choice. order.eaten is not one of the available choices." in block

    empty = add(client, url="")
    assert empty.status_code == 400
    assert "This field is required." in field_block(empty.content.decode(), "url")
    assert endpoints(owner.restaurant) == []


@pytest.mark.django_db
def test_at_the_limit_the_form_is_disabled_and_the_service_refuses(roster, settings):
    settings.WEBHOOK_CREATE_RATE = "1000/h"
    owner = roster[("ours", "owner")]
    for n in range(services.MAX_ENDPOINTS):
        make_endpoint(owner, url=f"https://hooks.example.com/{n}")
    client = signed_in(owner)

    page = client.get(PAGE).content.decode()
    assert "10 of at most 10 endpoints" in page
    assert "delete one to add another" in page
    assert '<fieldset class="plain" disabled>' in page

    refused = add(client)
    assert refused.status_code == 409
    assert "at most 10 webhook endpoints; delete one first" in refused.content.decode()
    assert SECRET.search(refused.content.decode()) is None
    assert len(endpoints(owner.restaurant)) == services.MAX_ENDPOINTS


@pytest.mark.django_db
def test_adding_endpoints_is_rate_limited_per_restaurant(roster, settings):
    settings.WEBHOOK_CREATE_RATE = "2/h"
    owner, admin = roster[("ours", "owner")], roster[("ours", "admin")]
    assert add(signed_in(owner)).status_code == 200
    assert add(signed_in(admin)).status_code == 200
    refused = add(signed_in(admin))
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert len(endpoints(owner.restaurant)) == 2
    # Another restaurant counts on its own.
    assert add(signed_in(roster[("theirs", "owner")])).status_code == 200


@pytest.mark.django_db
def test_edit_the_url_description_and_event_types(roster, settings):
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner, description="Old")
    client = signed_in(owner)
    page = client.get(f"{PAGE}/{endpoint.pk}")
    assert page.status_code == 200
    assert 'value="Old"' in page.content.decode()

    saved = client.post(
        f"{PAGE}/{endpoint.pk}",
        {
            "url": "https://hooks.example.com/v2",
            "description": "Kiosk",
            "event_types": ["menu.published"],
        },
    )

    assert saved.status_code == 303
    assert saved["Location"] == f"{PAGE}/{endpoint.pk}"
    [endpoint] = endpoints(owner.restaurant)
    assert (endpoint.url, endpoint.description) == ("https://hooks.example.com/v2", "Kiosk")
    assert endpoint.event_types == ["menu.published"]
    assert "Saved the endpoint." in client.get(saved["Location"]).content.decode()

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    refused = client.post(
        f"{PAGE}/{endpoint.pk}", {"url": "http://hooks.example.com/", "description": "Kiosk"}
    )
    assert refused.status_code == 400
    assert "Webhook URLs use https." in field_block(refused.content.decode(), "url")
    assert endpoints(owner.restaurant)[0].url == "https://hooks.example.com/v2"


@pytest.mark.django_db
def test_disable_and_enable_and_the_reasons_shown(roster):
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner)
    client = signed_in(owner)

    assert client.post(f"{PAGE}/{endpoint.pk}/state", {"enabled": "false"}).status_code == 303
    [endpoint] = endpoints(owner.restaurant)
    assert not endpoint.enabled and endpoint.disabled_reason == Endpoint.Disabled.MANUALLY
    assert "Disabled by staff or an integrator" in client.get(PAGE).content.decode()

    assert client.post(f"{PAGE}/{endpoint.pk}/state", {"enabled": "true"}).status_code == 303
    assert endpoints(owner.restaurant)[0].enabled
    assert client.post(f"{PAGE}/{endpoint.pk}/state", {"enabled": "maybe"}).status_code == 303
    assert endpoints(owner.restaurant)[0].enabled

    since = timezone.now() - timedelta(days=2)
    with tenant_context(owner.restaurant):
        Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=since)
        gone = Endpoint.objects.create(
            url="https://gone.example.com/", secret="whsec_x", enabled=False,
            disabled_reason=Endpoint.Disabled.GONE, disabled_at=timezone.now(),
        )  # fmt: skip
        Endpoint.objects.create(
            url="https://failing.example.com/", secret="whsec_y", enabled=False,
            disabled_reason=Endpoint.Disabled.FAILING, disabled_at=timezone.now(),
        )  # fmt: skip
    listed = client.get(PAGE).content.decode()
    local = since.astimezone(owner.restaurant.zone)
    assert f'failing since <time datetime="{local:%Y-%m-%dT%H:%M:%S}' in listed
    assert "Disabled: the endpoint answered 410 Gone" in listed
    assert "Disabled: failing for 5 days" in listed
    assert (
        '<button type="submit">Enable</button>' in client.get(f"{PAGE}/{gone.pk}").content.decode()
    )


@pytest.mark.django_db
def test_rotate_shows_the_new_secret_once_and_both_sign_for_a_day(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    old = secret_in(add(client))
    [endpoint] = endpoints(owner.restaurant)

    rotated = client.post(f"{PAGE}/{endpoint.pk}/rotate")

    assert rotated.status_code == 200
    assert "no-store" in rotated["Cache-Control"]
    new = secret_in(rotated)
    assert new != old
    assert "both secrets sign each message" in rotated.content.decode()
    assert "24 hours" in rotated.content.decode()
    [endpoint] = endpoints(owner.restaurant)
    assert (endpoint.secret, endpoint.previous_secret) == (new, old)
    page = client.get(f"{PAGE}/{endpoint.pk}").content.decode()
    assert SECRET.search(page) is None
    assert "also signs until" in page


@pytest.mark.django_db
def test_delete_asks_first(roster):
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner)
    client = signed_in(owner)
    confirm = client.get(f"{PAGE}/{endpoint.pk}/delete")
    assert confirm.status_code == 200
    assert "Delete this endpoint?" in confirm.content.decode()
    assert len(endpoints(owner.restaurant)) == 1

    done = client.post(f"{PAGE}/{endpoint.pk}/delete")

    assert done.status_code == 303
    assert done["Location"] == PAGE
    assert endpoints(owner.restaurant) == []
    assert f"Deleted the endpoint {HOOK_URL}." in client.get(PAGE).content.decode()


@pytest.mark.django_db
def test_another_restaurants_endpoint_is_not_found(roster):
    theirs = make_endpoint(roster[("theirs", "owner")], description="Their till")
    delivery = make_delivery(theirs, status=Delivery.Status.FAILED)
    client = signed_in(roster[("ours", "owner")])
    assert "Their till" not in client.get(PAGE).content.decode()
    base = f"{PAGE}/{theirs.pk}"
    assert client.get(base).status_code == 404
    assert client.post(base, {"url": HOOK_URL, "description": "Mine"}).status_code == 404
    assert client.post(f"{base}/state", {"enabled": "false"}).status_code == 404
    assert client.post(f"{base}/test").status_code == 404
    assert client.post(f"{base}/rotate").status_code == 404
    assert client.post(f"{base}/recover", {"since": "2020-01-01T00:00"}).status_code == 404
    assert client.get(f"{base}/delete").status_code == 404
    assert client.post(f"{base}/delete").status_code == 404
    assert client.post(f"{PAGE}/deliveries/{delivery.pk}/resend").status_code == 404
    [endpoint] = endpoints(theirs.restaurant)
    assert (endpoint.description, endpoint.secret, endpoint.enabled) == (
        "Their till",
        theirs.secret,
        True,
    )
    with tenant_context(theirs.restaurant):
        assert Delivery.objects.get().status == Delivery.Status.FAILED
        assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_log_shows_each_attempt_and_escapes_the_answer(roster, receiver):
    owner = roster[("ours", "owner")]
    owner.restaurant.timezone = "Pacific/Auckland"
    owner.restaurant.save()
    endpoint = make_endpoint(owner, url=receiver.url)
    receiver.answer(Reply(status=500, body=b'<script>alert("owned")</script> & more'))
    client = signed_in(owner)

    sent = client.post(f"{PAGE}/{endpoint.pk}/test")
    assert sent.status_code == 303
    assert "A test message" in client.get(sent["Location"]).content.decode()
    assert send_due() == 1

    page = client.get(f"{PAGE}/{endpoint.pk}")
    body = page.content.decode()
    assert page.status_code == 200
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; more" in body
    with tenant_context(owner.restaurant):
        delivery = Delivery.objects.get()
        attempt = Attempt.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.event_type == "webhook.test"
    assert delivery.message_id in body
    assert "HTTP 500" in body
    assert "Manual" in body and f"{attempt.duration_ms} ms" in body
    local = attempt.attempted_at.astimezone(owner.restaurant.zone)
    assert f"{local:%Y-%m-%d %H:%M:%S}" in body
    assert "Times are in Pacific/Auckland." in body


@pytest.mark.django_db(transaction=True)
def test_send_again_delivers_a_failed_delivery_once_more(roster, receiver, settings):
    settings.WEBHOOK_TEST_RATE = "100/h"
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner, url=receiver.url)
    receiver.answer(Reply(status=503))
    client = signed_in(owner)
    client.post(f"{PAGE}/{endpoint.pk}/test")
    send_due()
    with tenant_context(owner.restaurant):
        delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert "Send again" in client.get(f"{PAGE}/{endpoint.pk}").content.decode()

    again = client.post(f"{PAGE}/deliveries/{delivery.pk}/resend")

    assert again.status_code == 303
    assert again["Location"] == f"{PAGE}/{endpoint.pk}"
    assert f"Sending {delivery.message_id} again." in client.get(again["Location"]).content.decode()
    assert send_due() == 1
    with tenant_context(owner.restaurant):
        delivery.refresh_from_db()
        triggers = list(Attempt.objects.order_by("id").values_list("trigger", flat=True))
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SUCCEEDED, 2)
    assert triggers == ["manual", "manual"]
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.message_id] * 2

    # A disabled endpoint's deliveries are not sent again: the service's refusal is shown.
    client.post(f"{PAGE}/{endpoint.pk}/state", {"enabled": "false"})
    refused = client.post(f"{PAGE}/deliveries/{delivery.pk}/resend", follow=True)
    assert "The endpoint is disabled: enable it first." in refused.content.decode()
    assert send_due() == 0


@pytest.mark.django_db(transaction=True)
def test_recover_sends_again_what_failed_since_a_local_time(roster, receiver, settings):
    settings.WEBHOOK_TEST_RATE = "100/h"
    owner = roster[("ours", "owner")]
    restaurant = owner.restaurant
    restaurant.timezone = "Pacific/Auckland"
    restaurant.save()
    endpoint = make_endpoint(owner, url=receiver.url)
    receiver.answer(Reply(status=500), Reply(status=500))
    client = signed_in(owner)
    client.post(f"{PAGE}/{endpoint.pk}/test")
    client.post(f"{PAGE}/{endpoint.pk}/test")
    assert send_due() == 2
    earlier, later = timezone.now() - timedelta(hours=3), timezone.now() - timedelta(hours=1)
    with tenant_context(restaurant):
        first, second = Delivery.objects.order_by("id")
        Delivery.objects.filter(pk=first.pk).update(created_at=earlier)
        Delivery.objects.filter(pk=second.pk).update(created_at=later)
    assert {first.status, second.status} == {Delivery.Status.FAILED}

    # Two hours ago, read in Auckland's time: only the later delivery.
    since = (timezone.now() - timedelta(hours=2)).astimezone(restaurant.zone)
    recovered = client.post(f"{PAGE}/{endpoint.pk}/recover", {"since": f"{since:%Y-%m-%dT%H:%M}"})

    assert recovered.status_code == 303
    assert (
        "1 failed delivery is being sent again."
        in client.get(recovered["Location"]).content.decode()
    )
    assert send_due() == 1
    with tenant_context(restaurant):
        first.refresh_from_db()
        second.refresh_from_db()
    assert (first.status, second.status) == (Delivery.Status.FAILED, Delivery.Status.SUCCEEDED)

    future = (timezone.now() + timedelta(hours=1)).astimezone(restaurant.zone)
    refused = client.post(f"{PAGE}/{endpoint.pk}/recover", {"since": f"{future:%Y-%m-%dT%H:%M}"})
    assert refused.status_code == 400
    assert "Choose a time in the past." in field_block(refused.content.decode(), "since")
    garbage = client.post(f"{PAGE}/{endpoint.pk}/recover", {"since": "yesterday"})
    assert garbage.status_code == 400
    assert "Enter a valid date/time." in field_block(garbage.content.decode(), "since")

    client.post(f"{PAGE}/{endpoint.pk}/state", {"enabled": "false"})
    disabled = client.post(f"{PAGE}/{endpoint.pk}/recover", {"since": "2020-01-01T00:00"})
    assert disabled.status_code == 409
    assert "The endpoint is disabled: enable it first." in disabled.content.decode()
    assert send_due() == 0


@pytest.mark.django_db
def test_test_events_are_rate_limited_per_restaurant(roster, settings):
    settings.WEBHOOK_TEST_RATE = "1/h"
    owner, admin = roster[("ours", "owner")], roster[("ours", "admin")]
    endpoint = make_endpoint(owner)
    assert signed_in(owner).post(f"{PAGE}/{endpoint.pk}/test").status_code == 303
    refused = signed_in(admin).post(f"{PAGE}/{endpoint.pk}/test")
    assert refused.status_code == 429
    with tenant_context(owner.restaurant):
        assert Delivery.objects.count() == 1
    theirs = make_endpoint(roster[("theirs", "owner")])
    assert (
        signed_in(roster[("theirs", "owner")]).post(f"{PAGE}/{theirs.pk}/test").status_code == 303
    )


@pytest.mark.django_db
def test_the_log_filters_by_status_and_pages_with_bounded_queries(
    roster, django_assert_max_num_queries
):
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner)
    other = make_endpoint(owner, url="https://other.example.com/")
    make_delivery(other, status=Delivery.Status.FAILED, message_id="msg_other_endpoint")
    for n in range(30):
        status = Delivery.Status.FAILED if n % 3 == 0 else Delivery.Status.SUCCEEDED
        delivery = make_delivery(endpoint, status=status, message_id=f"msg_{n:02}", attempts=3)
        with tenant_context(owner.restaurant):
            for a in range(3):
                Attempt.objects.create(
                    delivery=delivery, endpoint=endpoint, attempted_at=timezone.now(),
                    status_code=500 if a < 2 else 200, duration_ms=10 + a,
                    response_body=f"answer {n}-{a}",
                )  # fmt: skip
    client = signed_in(owner)

    with django_assert_max_num_queries(20):
        first = client.get(f"{PAGE}/{endpoint.pk}")
    body = first.content.decode()
    assert body.count('data-testid="delivery"') == 25
    assert "msg_29" in body and "msg_05" in body and "msg_04" not in body
    assert "msg_other_endpoint" not in body
    assert body.index("msg_29") < body.index("msg_28")
    assert body.count('data-testid="attempt"') == 75
    older = re.search(r'href="(\?before=\d+)#log" rel="next"', body)
    assert older is not None
    second = client.get(f"{PAGE}/{endpoint.pk}{older.group(1)}").content.decode()
    assert second.count('data-testid="delivery"') == 5
    assert "msg_04" in second and "msg_00" in second and "msg_05" not in second

    failed = client.get(f"{PAGE}/{endpoint.pk}?status=failed").content.decode()
    assert failed.count('data-testid="delivery"') == 10
    assert "msg_27" in failed and "msg_28" not in failed
    wrong = client.get(f"{PAGE}/{endpoint.pk}?status=lost")
    assert wrong.status_code == 400
    assert "Select a valid choice" in wrong.content.decode()


@dataclass(frozen=True)
class OrdersOnlyActor(Actor):
    @property
    def scopes(self):
        return frozenset({Scope.ORDERS_READ, Scope.WEBHOOKS_READ, Scope.WEBHOOKS_MANAGE})


@pytest.mark.django_db
def test_the_form_offers_only_the_types_the_members_scopes_can_see(roster):
    from dashboard.webhook_forms import EndpointCreateForm

    actor = OrdersOnlyActor(member=roster[("ours", "owner")])
    form = EndpointCreateForm(actor=actor)
    offered = {option.name for group in form.event_groups() for option in group.options}
    assert "order.placed" in offered and "payment.failed" in offered
    assert "customer.created" not in offered and "menu.published" not in offered
    refused = EndpointCreateForm({"url": HOOK_URL, "event_types": ["menu.published"]}, actor=actor)
    assert not refused.is_valid()
    assert "event_types" in refused.errors
