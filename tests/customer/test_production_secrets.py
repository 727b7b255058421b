"""ENV=production refuses weak secrets: SERVICE_KEY, JWT_SECRET (and NOTIFICATIONS_SECRET where
a service has it) need at least 32 characters (issue 11 item 9)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from customer.settings import CustomerSettings
from sellers.settings import SellersSettings
from shared.settings import ServiceSettings, weak_production_secrets, weak_secret

STRONG = "s" * 32


@pytest.mark.parametrize("cls", [CustomerSettings, SellersSettings])
def test_one_character_service_key_refused_in_production(cls):
    with pytest.raises(ValidationError, match="SERVICE_KEY"):
        cls(_env_file=None, ENV="production", JWT_SECRET=STRONG, SERVICE_KEY="k")


@pytest.mark.parametrize("cls", [CustomerSettings, SellersSettings])
def test_short_jwt_secret_refused_in_production(cls):
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        cls(_env_file=None, ENV="production", JWT_SECRET="j" * 31, SERVICE_KEY=STRONG)


def test_every_rotated_service_key_must_be_long():
    with pytest.raises(ValidationError, match="SERVICE_KEY"):
        ServiceSettings(_env_file=None, ENV="production", JWT_SECRET=STRONG, SERVICE_KEY=f"{STRONG},short")


def test_strong_secrets_accepted_and_development_unchecked():
    s = CustomerSettings(_env_file=None, ENV="production", JWT_SECRET=STRONG, SERVICE_KEY=f"{STRONG},{'t' * 40}")
    assert len(s.service_keys) == 2
    assert CustomerSettings(_env_file=None, SERVICE_KEY="k").SERVICE_KEY == "k"  # development: anything goes


def test_notifications_secret_checked_where_a_service_has_it():
    class WithSecret(ServiceSettings):
        NOTIFICATIONS_SECRET: str = "n" * 10

    with pytest.raises(ValidationError, match="NOTIFICATIONS_SECRET"):
        WithSecret(_env_file=None, ENV="production", JWT_SECRET=STRONG, SERVICE_KEY=STRONG)
    ok = WithSecret(
        _env_file=None, ENV="production", JWT_SECRET=STRONG, SERVICE_KEY=STRONG, NOTIFICATIONS_SECRET=STRONG
    )
    assert weak_production_secrets(ok) == []
    assert weak_secret("dev-notifications-secret-change-me")  # its development default is refused too
