"""The permission matrix: every patient endpoint x every role and relationship, against an explicit table.

Any 2xx where the table says "deny" fails (zero unauthorised successes); every "allow" must succeed; every denial of
a signed-in user is audited (outcome ``denied``) and answers 403 with ``break_glass_required`` exactly where an
emergency grant would lift it. Anonymous requests are refused by authentication (401) before any record is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from ehr.models import AuditEvent, BreakGlassGrant, CareTeamMember, Patient
from ehr.services.access import break_glass_grant
from tests.conftest import csrf_login
from tests.factories import CareTeamMemberFactory, OrganizationFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/ehr"

ROLES = (
    "anonymous",
    "patient_self",
    "patient_other",
    "dr_team",
    "dr_assigned",
    "dr_outside",
    "dr_glass",
    "nurse_team",
    "nurse_outside",
    "nurse_glass",
    "scheduler",
    "billing",
    "admin",
)
TEAM = {"dr_team", "dr_assigned", "nurse_team"}
GLASS = {"dr_glass", "nurse_glass"}
CLINICIANS = TEAM | GLASS | {"dr_outside", "nurse_outside"}
STAFF = CLINICIANS | {"scheduler", "billing", "admin"}
OUTSIDE = {"dr_outside", "nurse_outside"}  # denied with break_glass_required where the row says so


@dataclass
class World:
    """One target patient and a user for every role/relationship, made through the real services."""

    patient: Patient
    other_patient: Patient
    users: dict[str, Any]
    spare_nurse: Any
    ending: CareTeamMember
    grant: BreakGlassGrant


@pytest.fixture
def world() -> World:
    org = OrganizationFactory(name="Matrix Health")

    def staff(name: str, role: str) -> Any:
        return UserFactory(username=name, roles=[role], organization=org)

    admin = staff("admin", "admin")
    users: dict[str, Any] = {
        "patient_self": UserFactory(username="patient_self", roles=["patient"]),
        "patient_other": UserFactory(username="patient_other", roles=["patient"]),
        "admin": admin,
        "scheduler": staff("scheduler", "scheduler"),
        "billing": staff("billing", "billing"),
    }
    for name in ("dr_team", "dr_assigned", "dr_outside", "dr_glass"):
        users[name] = staff(name, "practitioner")
    for name in ("nurse_team", "nurse_outside", "nurse_glass"):
        users[name] = staff(name, "nurse")
    patient = PatientFactory(registrar=admin, user=users["patient_self"], national_id="PT-123456789")
    other = PatientFactory(registrar=admin, user=users["patient_other"])
    CareTeamMemberFactory(patient=patient, member=users["dr_assigned"], role="assigned-doctor", manager=admin)
    CareTeamMemberFactory(patient=patient, member=users["dr_team"], manager=admin)
    CareTeamMemberFactory(patient=patient, member=users["nurse_team"], manager=admin)
    ending = CareTeamMemberFactory(patient=patient, member=staff("dr_extra", "practitioner"), manager=admin)
    for name in ("dr_glass", "nurse_glass"):
        grant = break_glass_grant(
            actor=users[name], patient_id=patient.pk, reason="Unconscious in the ER, no team reachable"
        )
    return World(
        patient=patient,
        other_patient=other,
        users=users,
        spare_nurse=staff("nurse_spare", "nurse"),
        ending=ending,
        grant=grant,
    )


def _client(role: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    if role == "anonymous":
        client.get("/api/v1/auth/csrf/")
    else:
        assert csrf_login(client, role).status_code == 200
    return client


def _send(client: APIClient, method: str, path: str, data: Any = None, **headers: str) -> Any:
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(path, data, format="json", HTTP_X_CSRFTOKEN=token, **headers)


Request = Callable[[APIClient, World], Any]


def _version(w: World) -> str:
    return f'"{Patient.objects.get(pk=w.patient.pk).version}"'


def _survivor(w: World) -> Patient:
    """A record without a portal login to merge the world's patient into (made by a fresh registrar)."""
    return PatientFactory()


ENDPOINTS: dict[str, Request] = {
    "search": lambda c, w: c.get(f"{BASE}/patients/", {"q": w.patient.family_name}),
    "register": lambda c, w: _send(
        c,
        "post",
        f"{BASE}/patients/",
        {"given_name": "New", "family_name": "Person", "birth_date": "1990-01-01", "sex": "other"},
    ),
    "detail": lambda c, w: c.get(f"{BASE}/patients/{w.patient.pk}/"),
    "patch": lambda c, w: _send(
        c, "patch", f"{BASE}/patients/{w.patient.pk}/", {"city": "Braga", "reason": "moved"}, HTTP_IF_MATCH=_version(w)
    ),
    "identifiers": lambda c, w: c.get(f"{BASE}/patients/{w.patient.pk}/identifiers/", {"purpose": "treatment"}),
    "history": lambda c, w: c.get(f"{BASE}/patients/{w.patient.pk}/history/"),
    "entered_in_error": lambda c, w: _send(
        c,
        "post",
        f"{BASE}/patients/{w.patient.pk}/entered-in-error/",
        {"reason": "registered twice"},
        HTTP_IF_MATCH=_version(w),
    ),
    "care_team_list": lambda c, w: c.get(f"{BASE}/patients/{w.patient.pk}/care-team/"),
    "care_team_add": lambda c, w: _send(
        c,
        "post",
        f"{BASE}/patients/{w.patient.pk}/care-team/",
        {"member_id": w.spare_nurse.pk, "role": "nurse", "reason": "ward nurse this week"},
    ),
    "care_team_end": lambda c, w: _send(c, "post", f"{BASE}/care-team/{w.ending.pk}/end/", {"reason": "handed over"}),
    "break_glass": lambda c, w: _send(
        c, "post", f"{BASE}/patients/{w.patient.pk}/break-glass/", {"reason": "Collapsed in the waiting room, urgent"}
    ),
    "break_glass_queue": lambda c, w: c.get(f"{BASE}/break-glass/", {"review_status": "pending"}),
    "break_glass_review": lambda c, w: _send(
        c, "post", f"{BASE}/break-glass/{w.grant.pk}/review/", {"outcome": "appropriate", "note": "ER admission"}
    ),
    "access_log": lambda c, w: c.get(f"{BASE}/me/access-log/"),
    "merge": lambda c, w: _send(
        c,
        "post",
        f"{BASE}/patients/{w.patient.pk}/merge/",
        {"into": _survivor(w).pk, "reason": "registered twice", "source_version": 1, "target_version": 1},
    ),
}

# endpoint -> the roles allowed; every other role must be refused.
ALLOWED: dict[str, set[str]] = {
    "search": STAFF,
    "register": CLINICIANS | {"scheduler", "admin"},
    "detail": TEAM | GLASS | {"scheduler", "billing", "admin", "patient_self"},
    "patch": TEAM | GLASS | {"scheduler", "admin"},
    "identifiers": TEAM | GLASS | {"billing", "admin"},
    "history": TEAM | GLASS | {"scheduler", "billing", "admin", "patient_self"},
    "entered_in_error": TEAM | GLASS | {"scheduler", "admin"},
    "care_team_list": TEAM | GLASS | {"scheduler", "admin", "patient_self"},
    "care_team_add": {"dr_assigned", "scheduler", "admin"},
    "care_team_end": {"dr_assigned", "scheduler", "admin"},
    "break_glass": CLINICIANS | {"admin"},
    "break_glass_queue": {"admin"},
    "break_glass_review": {"admin"},
    "access_log": {"patient_self", "patient_other"},  # "me": each patient reads only their own log
    "merge": {"scheduler", "admin"},  # health-information work; checked on both records
}
# endpoint -> whether a clinician outside the care team is told that break-the-glass would let them in.
BREAK_GLASS_LIFTS = {"detail", "patch", "identifiers", "history", "entered_in_error", "care_team_list"}


# The routes this matrix drives (ehr/api/urls.py). Clinical routes (encounters, notes, conditions, ...) are driven
# by the clinical record's own matrix.
ROUTES = {
    "patients/",
    "patients/<int:patient_id>/",
    "patients/<int:patient_id>/identifiers/",
    "patients/<int:patient_id>/history/",
    "patients/<int:patient_id>/entered-in-error/",
    "patients/<int:patient_id>/care-team/",
    "care-team/<int:membership_id>/end/",
    "patients/<int:patient_id>/break-glass/",
    "break-glass/",
    "break-glass/<int:grant_id>/review/",
    "me/access-log/",
    "patients/<int:patient_id>/merge/",
}


def test_the_table_covers_every_access_and_demographic_endpoint() -> None:
    from ehr.api.urls import urlpatterns

    assert {str(p.pattern) for p in urlpatterns} >= ROUTES
    assert set(ENDPOINTS) == set(ALLOWED)
    assert all(ALLOWED[e] <= set(ROLES) for e in ALLOWED)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_permission_matrix(world: World, endpoint: str, role: str) -> None:
    client = _client(role)
    marker = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = ENDPOINTS[endpoint](client, world)
    allowed = role in ALLOWED[endpoint]
    if allowed:
        assert 200 <= response.status_code < 300, (endpoint, role, response.status_code, response.content[:300])
        return
    assert not 200 <= response.status_code < 300, f"UNAUTHORISED SUCCESS: {role} on {endpoint}"
    if role == "anonymous":
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        return
    assert response.status_code == 403, (endpoint, role, response.status_code, response.content[:300])
    expected = "break_glass_required" if role in OUTSIDE and endpoint in BREAK_GLASS_LIFTS else "permission_denied"
    assert response.json()["code"] == expected, (endpoint, role)
    denied = AuditEvent.objects.filter(id__gt=marker, outcome="denied", actor=world.users[role])
    assert denied.count() == 1, (endpoint, role)
