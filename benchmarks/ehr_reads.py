"""EHR read speed with auditing on: patient-summary read and patient search over 100k patients, 1M observations.

Prints JSON lines (one per figure). Run with `make bench` or `.venv/bin/python benchmarks/ehr_reads.py`.

Data (synthetic, generated once into the bench database and reused while its size matches): N patients, each with
one encounter at the bench clinic (so the bench clinician reaches them through the same-clinic relationship), and
10 observations each over six vital-sign codes.

Audit overhead: PHI reads cannot be switched off in Consulta (no such setting exists, on purpose). The overhead is
measured at the SQL level instead: for each sampled call the statements the selector runs are captured, then
replayed twice inside a transaction — once all of them (audited), once without the audit INSERT (unaudited) — and
the ratio of the medians is printed. The end-to-end selector timings (ORM + access check + audit) are printed too.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consulta_bench")
os.environ.setdefault("TEST_REDIS_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
os.environ.setdefault("TEST_KEY_PREFIX", "consulta-bench")

VITALS = [  # LOINC code, display, unit, low, high
    ("8867-4", "Heart rate", "/min", 50, 120),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 170),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55, 100),
    ("8310-5", "Body temperature", "Cel", 36, 39),
    ("9279-1", "Respiratory rate", "/min", 10, 24),
    ("59408-5", "Oxygen saturation", "%", 90, 100),
]
# The demo data's synthetic names (ehr/services/demo.py), reused so searches hit realistic duplicates.
FIRST: list[str] = []
LAST: list[str] = []


def log(msg: str) -> None:
    print(f"[ehr_reads {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps(fields, separators=(",", ":")), flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    if not name.endswith("bench"):
        raise SystemExit("refusing to run against a database whose name does not end in 'bench'")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    import django

    django.setup()
    from ehr.services import demo

    FIRST[:] = demo._FIRST
    LAST[:] = demo._LAST
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False, skip_checks=True)


def copy_rows(table: str, columns: list[str], rows: io.StringIO) -> None:
    from django.db import connection

    rows.seek(0)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        while chunk := rows.read(1 << 20):
            copy.write(chunk)


def generate(n_patients: int, obs_per_patient: int) -> tuple[Any, Any]:
    """Create (or reuse) the bench clinician, clinic and data; returns (clinician, location)."""
    from django.db import connection, transaction

    from ehr import crypto
    from ehr.models import Location, Observation, Organization, Patient, User

    org, _ = Organization.objects.get_or_create(name="Bench Health")
    loc, _ = Location.objects.get_or_create(organization=org, name="Bench Clinic", defaults={"timezone": "UTC"})
    doctor, created = User.objects.get_or_create(
        username="bench-doctor", defaults={"roles": ["practitioner"], "organization": org, "first_name": "Bench"}
    )
    if created:
        doctor.set_unusable_password()
        doctor.save()
    doctor.locations.add(loc)
    if Patient.objects.count() == n_patients and Observation.objects.count() == n_patients * obs_per_patient:
        log(f"reusing {n_patients} patients and {n_patients * obs_per_patient} observations")
        return doctor, loc
    log("regenerating bench data (TRUNCATE of the bench database's clinical tables)")
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE ehr_observation, ehr_observationversion, ehr_encounter, ehr_patientversion, ehr_patient, "
            "ehr_auditevent RESTART IDENTITY CASCADE"
        )
    rng = random.Random(7)
    now = datetime.now(UTC)
    empty_hash = ""
    started = time.perf_counter()
    buf = io.StringIO()
    for i in range(1, n_patients + 1):
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 33000))
        nid = f"NID{i:09d}"
        fields = [
            str(i),
            f"MRN{i:08d}",
            rng.choice(FIRST),
            rng.choice(LAST),
            birth.isoformat(),
            rng.choice(["male", "female"]),
            "",
            f"+1555{i:07d}",
            f"p{i}@bench.invalid",
            "",
            "",
            "",
            "",
            "en",
            "",
            "",
            crypto.encrypt_identifier(nid) if i <= 1000 else "",
            crypto.identifier_hash(nid) if i <= 1000 else empty_hash,
            "",
            empty_hash,
            "active",
            "1",
            now.isoformat(),
            now.isoformat(),
            "\\N",
        ]
        buf.write("\t".join(fields) + "\n")
    copy_rows(
        "ehr_patient",
        [
            "id",
            "mrn",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "gender_identity",
            "phone",
            "email",
            "address_line",
            "city",
            "postal_code",
            "country",
            "preferred_language",
            "emergency_contact_name",
            "emergency_contact_phone",
            "national_id_encrypted",
            "national_id_hash",
            "insurance_member_id_encrypted",
            "insurance_member_id_hash",
            "status",
            "version",
            "created_at",
            "updated_at",
            "user_id",
        ],
        buf,
    )
    log(f"patients: {n_patients} in {time.perf_counter() - started:.1f}s")
    buf = io.StringIO()
    for i in range(1, n_patients + 1):
        start = (now - timedelta(days=rng.randrange(1, 700))).isoformat()
        buf.write(
            "\t".join(
                [
                    str(i),
                    "in-person",
                    "finished",
                    start,
                    start,
                    "check-up",
                    "900",
                    "1",
                    now.isoformat(),
                    now.isoformat(),
                    str(loc.pk),
                    str(i),
                    str(doctor.pk),
                ]
            )
            + "\n"
        )
    copy_rows(
        "ehr_encounter",
        [
            "id",
            "modality",
            "status",
            "period_start",
            "period_end",
            "reason",
            "duration_seconds",
            "version",
            "created_at",
            "updated_at",
            "location_id",
            "patient_id",
            "practitioner_id",
        ],
        buf,
    )
    log(f"encounters: {n_patients}")
    started = time.perf_counter()
    oid = 0
    for batch_start in range(1, n_patients + 1, 20000):
        buf = io.StringIO()
        for i in range(batch_start, min(n_patients + 1, batch_start + 20000)):
            for k in range(obs_per_patient):
                code, display, unit, low, high = VITALS[k % len(VITALS)]
                oid += 1
                at = (now - timedelta(hours=rng.randrange(1, 20000))).isoformat()
                buf.write(
                    "\t".join(
                        [
                            str(oid),
                            code,
                            display,
                            "vital-signs",
                            str(rng.randint(low, high)),
                            unit,
                            at,
                            "final",
                            "1",
                            now.isoformat(),
                            now.isoformat(),
                            str(i),
                            str(i),
                            str(doctor.pk),
                        ]
                    )
                    + "\n"
                )
        copy_rows(
            "ehr_observation",
            [
                "id",
                "code",
                "code_display",
                "category",
                "value",
                "unit",
                "effective_at",
                "status",
                "version",
                "created_at",
                "updated_at",
                "encounter_id",
                "patient_id",
                "performer_id",
            ],
            buf,
        )
    log(f"observations: {oid} in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        for table in ("ehr_patient", "ehr_encounter", "ehr_observation"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cursor.execute(f"ANALYZE {table}")
        cursor.execute(f"SELECT setval('ehr_patient_mrn_seq', {n_patients + 1})")
    with transaction.atomic():
        pass
    return doctor, loc


def timed_calls(fn: Any, args: list[Any], warmup: int = 20) -> list[float]:
    from django.db import transaction

    for a in args[:warmup]:
        with transaction.atomic():
            fn(a)
    out = []
    for a in args:
        t0 = time.perf_counter()
        with transaction.atomic():
            fn(a)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def sql_replay_ratio(fn: Any, args: list[Any]) -> dict[str, float]:
    """Capture each call's SQL, then replay it with and without the audit INSERT."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    audited: list[float] = []
    unaudited: list[float] = []
    raw = connection.cursor
    for a in args:
        with CaptureQueriesContext(connection) as ctx, transaction.atomic():
            fn(a)
        statements = [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
        plain = [s for s in statements if "ehr_auditevent" not in s]
        for target, stmts in ((audited, statements), (unaudited, plain)):
            t0 = time.perf_counter()
            with transaction.atomic(), raw() as cursor:
                for s in stmts:
                    cursor.cursor.execute(s)  # psycopg's own cursor: the captured SQL is already interpolated
            target.append((time.perf_counter() - t0) * 1000)
    return {
        "sql_audited_p50_ms": pct(audited, 50),
        "sql_unaudited_p50_ms": pct(unaudited, 50),
        "audit_overhead_ratio": round(statistics.median(audited) / statistics.median(unaudited), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=int(os.environ.get("BENCH_EHR_PATIENTS", 100_000)))
    parser.add_argument("--observations-per-patient", type=int, default=10)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    ensure_database()
    setup_django()
    from ehr.models import AuditEvent
    from ehr.selectors import chart_summary_get, patient_search

    doctor, _ = generate(args.patients, args.observations_per_patient)
    rng = random.Random(11)
    ids = [rng.randint(1, args.patients) for _ in range(args.samples)]
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(args.samples)]
    audit_before = AuditEvent.objects.count()

    def summary(pid: int) -> Any:
        return chart_summary_get(actor=doctor, patient_id=pid)

    def search(q: str) -> Any:
        return patient_search(actor=doctor, query=q, limit=25)

    for name, fn, inputs in (("patient_summary", summary, ids), ("patient_search", search, names)):
        times = timed_calls(fn, inputs)
        replay = sql_replay_ratio(fn, inputs[:200])
        p50 = pct(times, 50)
        audit_ms = replay["sql_audited_p50_ms"] - replay["sql_unaudited_p50_ms"]
        emit(
            bench="ehr_read",
            read=name,
            patients=args.patients,
            observations=args.patients * args.observations_per_patient,
            samples=len(inputs),
            p50_ms=p50,
            p95_ms=pct(times, 95),
            p99_ms=pct(times, 99),
            audited=True,
            **replay,
            # end to end: the whole call against the same call less the audit statement's SQL time
            e2e_audit_overhead_ratio=round(p50 / max(p50 - audit_ms, 1e-6), 3),
        )
    written = AuditEvent.objects.count() - audit_before
    emit(bench="ehr_read_audit_rows", written=written, expected_at_least=2 * (args.samples + 20) + 400)


if __name__ == "__main__":
    main()
