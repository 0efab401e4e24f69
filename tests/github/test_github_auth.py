import asyncio

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.github.auth import AppAuth, InstallationTokenCache
from app.github.client import GitHubClientFactory
from tests.conftest_github import GITHUB_APP_ID, FakeClock
from tests.github_sim import GitHubSimulator

NOW = 1_700_000_000


def token_requests(sim: GitHubSimulator) -> int:
    return sum(1 for e in sim.exchanges if e.path.endswith("/access_tokens"))


def test_jwt_claims_are_what_github_expects(github_app_keys):
    auth = AppAuth(GITHUB_APP_ID, github_app_keys[0], clock=lambda: NOW + 0.7)
    token = auth.jwt()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, github_app_keys[1], algorithms=["RS256"],
                        options={"verify_exp": False, "verify_iat": False})
    assert claims == {"iat": NOW - 60, "exp": NOW + 540, "iss": str(GITHUB_APP_ID)}
    assert claims["exp"] - claims["iat"] <= 600


def test_jwt_verifies_with_the_public_key_at_the_current_time(github_app_keys):
    token = AppAuth(str(GITHUB_APP_ID), github_app_keys[0]).jwt()
    claims = jwt.decode(token, github_app_keys[1], algorithms=["RS256"])
    assert claims["iss"] == str(GITHUB_APP_ID)


SECRET_LOOKING = "-----BEGIN RSA PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END RSA PRIVATE KEY-----\n"


def ec_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize("pem", ["", "not a key", SECRET_LOOKING, "public", "ec"])
def test_bad_private_key_gives_a_clear_error_without_the_key(pem, github_app_keys):
    pem = {"public": github_app_keys[1], "ec": ec_private_pem()}.get(pem, pem)
    with pytest.raises(ValueError, match="not a valid unencrypted RSA private key") as err:
        AppAuth(GITHUB_APP_ID, pem)
    assert "TOPSECRET" not in str(err.value) and "BEGIN PUBLIC" not in str(err.value)
    assert err.value.__context__ is None


@pytest.fixture
def installed(github_sim):
    github_sim.add_installation(7, "octo", ["octo/repo"])
    return github_sim


async def test_token_cache_reuses_until_margin_before_expiry(installed, github_factory, github_clock):
    app = await github_factory.app_client()
    cache = github_factory.tokens
    first = await cache.token(app, 7)
    assert first.startswith("ghs_")
    github_clock.advance(3600 - 300 - 1)
    assert await cache.token(app, 7) == first
    assert token_requests(installed) == 1
    github_clock.advance(2)
    second = await cache.token(app, 7)
    assert second != first and token_requests(installed) == 2


async def test_token_cache_respects_a_short_expires_at(github_app_keys):
    clock = FakeClock(NOW)
    sim = GitHubSimulator(GITHUB_APP_ID, github_app_keys[1], token_ttl_s=120, clock=clock)
    sim.add_installation(7, "octo", ["octo/repo"])
    auth = AppAuth(GITHUB_APP_ID, github_app_keys[0], clock=clock)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim")
    factory = GitHubClientFactory("http://sim", auth, http,
                                  tokens=InstallationTokenCache(auth, clock=clock, margin_s=300))
    app = await factory.app_client()
    first = await factory.tokens.token(app, 7)
    clock.advance(59)
    assert await factory.tokens.token(app, 7) == first
    clock.advance(2)  # past half of the 120 s life: refresh long before it expires
    assert await factory.tokens.token(app, 7) != first
    assert token_requests(sim) == 2
    await factory.aclose()


async def test_concurrent_requests_fetch_one_token(installed, github_factory):
    app = await github_factory.app_client()
    tokens = await asyncio.gather(*(github_factory.tokens.token(app, 7) for _ in range(5)))
    assert len(set(tokens)) == 1 and token_requests(installed) == 1


async def test_invalidate_forces_a_new_token(installed, github_factory):
    app = await github_factory.app_client()
    first = await github_factory.tokens.token(app, 7)
    github_factory.invalidate(7)
    assert await github_factory.tokens.token(app, 7) != first


async def test_installation_client_recovers_from_a_revoked_token(installed, github_factory):
    gh = await github_factory.for_installation(7)
    assert (await gh.getitem("/repos/octo/repo"))["full_name"] == "octo/repo"
    installed.revoke_tokens(7)
    assert (await gh.getitem("/repos/octo/repo"))["full_name"] == "octo/repo"
    statuses = [e.status for e in installed.exchanges]
    assert statuses == [201, 200, 401, 201, 200]


async def test_app_client_signs_a_fresh_jwt_per_call(installed, github_factory, github_clock):
    gh = await github_factory.app_client()
    assert (await gh.getitem("/app"))["id"] == GITHUB_APP_ID
    github_clock.advance(20 * 60)  # a JWT signed at the start would have expired by now
    assert (await gh.getitem("/app/installations/7"))["account"]["login"] == "octo"
