"""Who may ask: the bearer token on /api, the Host allow-list, no CORS (``serve/doors.py``)."""

from __future__ import annotations

import pytest

from tastespace.errors import ConfigError
from tastespace.serve.app import create_app
from tests.serve.client import local_client

TOKEN = "s3cret-token-for-tests"
fault = pytest.mark.fault

API_CALLS = [
    ("GET", "/api/models", None),
    ("GET", "/api/items", None),
    ("GET", "/api/items/1", None),
    ("GET", "/api/items/1/similar", None),
    ("POST", "/api/recommend", {"history": [1, 2]}),
    ("GET", "/api/map", None),
]


@pytest.fixture(scope="module")
def locked(ease_bundle):
    return local_client(create_app([ease_bundle], token=TOKEN))


def call(client, method, path, body, **headers):
    return client.request(method, path, json=body, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@fault(
    "serve", "no bearer token on an /api route", "401 on every /api route, body names the header"
)
@pytest.mark.parametrize(("method", "path", "body"), API_CALLS)
def test_every_api_route_needs_the_token(locked, method, path, body):
    response = call(locked, method, path, body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == (
        "missing bearer token: this server was started with --token; "
        "send the header 'Authorization: Bearer <token>'"
    )
    assert call(locked, method, path, body, **bearer(TOKEN)).status_code == 200


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        pytest.param(
            f"Bearer {TOKEN[:-1]}x",
            "wrong bearer token in the Authorization header",
            marks=fault("serve", "wrong bearer token", "401, 'wrong bearer token'"),
        ),
        pytest.param(
            f"Bearer {TOKEN}extra",
            "wrong bearer token in the Authorization header",
            marks=fault("serve", "right token with a suffix", "401, 'wrong bearer token'"),
        ),
        pytest.param(
            f"Bearer {TOKEN[:4]}",
            "wrong bearer token in the Authorization header",
            marks=fault("serve", "prefix of the right token", "401, 'wrong bearer token'"),
        ),
        pytest.param(
            f"Basic {TOKEN}",
            "the Authorization header must read 'Bearer <token>'",
            marks=fault(
                "serve", "Authorization with another scheme", "401, names 'Bearer <token>'"
            ),
        ),
        pytest.param(
            "Bearer ",
            "the Authorization header must read 'Bearer <token>'",
            marks=fault("serve", "empty bearer token", "401, names 'Bearer <token>'"),
        ),
    ],
)
def test_wrong_credentials_are_401(locked, header, detail):
    response = locked.get("/api/models", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"detail": detail}


def test_the_scheme_is_case_insensitive_and_the_page_needs_no_token(locked):
    assert locked.get("/api/models", headers={"Authorization": f"bearer {TOKEN}"}).is_success
    for path in ("/", "/static/api.js", "/healthz", "/docs", "/redoc", "/openapi.json"):
        assert locked.get(path).status_code == 200, path


def test_docs_offer_the_token_scheme(locked, ease_bundle):
    schema = locked.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert schema["paths"]["/api/recommend"]["post"]["security"] == [{"BearerToken": []}]
    open_schema = local_client(create_app([ease_bundle])).get("/openapi.json").json()
    assert "securitySchemes" not in open_schema.get("components", {})


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", marks=fault("serve", "empty --token", "ConfigError at start")),
        pytest.param(
            "two words",
            marks=fault("serve", "--token with a space", "ConfigError at start, names ASCII"),
        ),
        pytest.param(
            "jeton-été",
            marks=fault("serve", "non-ASCII --token", "ConfigError at start, names ASCII"),
        ),
    ],
)
def test_unusable_tokens_are_refused_at_start(ease_bundle, token):
    with pytest.raises(ConfigError, match="token"):
        create_app([ease_bundle], token=token)


@pytest.fixture(scope="module")
def open_client(ease_bundle):
    return local_client(create_app([ease_bundle], allow_hosts=["my-box.lan"]))


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:9", "[::1]:8000", "MY-BOX.lan"]
)
def test_known_hosts_are_answered(open_client, host):
    assert open_client.get("/api/models", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(
            "evil.example:8000",
            marks=fault("serve", "foreign Host header (DNS rebinding)", "400, names --allow-host"),
        ),
        pytest.param(
            "localhost.evil.example",
            marks=fault("serve", "Host that starts like localhost", "400, names --allow-host"),
        ),
        pytest.param("", marks=fault("serve", "empty Host header", "400, names --allow-host")),
        pytest.param(
            "localhost:notaport",
            marks=fault("serve", "Host header with a bad port", "400, names --allow-host"),
        ),
    ],
)
def test_foreign_hosts_are_refused(open_client, host):
    for path in ("/api/models", "/", "/docs"):
        response = open_client.get(path, headers={"host": host})
        assert response.status_code == 400, path
        detail = response.json()["detail"]
        assert detail.startswith(f"Host header {host!r} is not one this server answers to")
        assert "127.0.0.1, ::1, localhost, my-box.lan" in detail and "--allow-host" in detail


def test_star_turns_the_host_check_off(ease_bundle):
    client = local_client(create_app([ease_bundle], allow_hosts=["*"]))
    assert client.get("/healthz", headers={"host": "anything.example"}).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "http://my-box.lan",
            marks=fault("serve", "--allow-host with a scheme", "ConfigError at start"),
        ),
        pytest.param(
            "my-box.lan:8000",
            marks=fault("serve", "--allow-host with a port", "ConfigError at start"),
        ),
    ],
)
def test_unusable_host_names_are_refused_at_start(ease_bundle, name):
    with pytest.raises(ConfigError, match="is not a host name or address"):
        create_app([ease_bundle], allow_hosts=[name])


@fault(
    "serve",
    "cross-origin request from another site",
    "no CORS headers: the browser withholds the answer",
)
def test_no_cors(locked):
    origin = {"Origin": "https://evil.example"}
    simple = locked.get("/api/models", headers={**origin, **bearer(TOKEN)})
    assert "access-control-allow-origin" not in simple.headers
    preflight = locked.options(
        "/api/recommend",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code in (401, 405)
