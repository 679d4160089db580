import pytest
from django.test import override_settings


def test_healthz_answers_without_touching_the_database(http):
    # No django_db mark: any query here would raise, and the probe would answer 500.
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_when_everything_answers(http):
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


@pytest.mark.django_db(transaction=True)
def test_readyz_names_a_dead_database(http, reconnect_as):
    # Nothing listens on port 1: the connection is refused, as with a database that is down.
    with reconnect_as(HOST="127.0.0.1", PORT="1", OPTIONS={"host": "127.0.0.1"}):
        response = http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"] == {"database": "unavailable", "cache": "ok"}
    assert http.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_names_a_dead_cache(http):
    dead_redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=dead_redis):
        response = http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]
