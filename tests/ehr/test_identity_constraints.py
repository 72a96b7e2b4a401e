"""Identity invariants enforced by PostgreSQL, not only by Python."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from ehr.models import User

pytestmark = pytest.mark.django_db


def test_user_without_a_role_is_rejected_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="roleless", roles=[])


def test_unknown_role_is_rejected_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="wizard", roles=["wizard"])


def test_btree_gist_extension_is_installed() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'")
        assert cursor.fetchone() == (1,)


def test_createsuperuser_gets_the_admin_role() -> None:
    user = User.objects.create_superuser("root-test", "root@example.invalid", "a-long-unused-password")
    assert user.roles == ["admin"]
