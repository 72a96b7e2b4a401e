"""``GET /api/v1/health/``: whether the database, Redis and at least one Celery worker answer."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.workers import workers_alive


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        extra = check() or {}
        result = {"status": "ok", **extra}
    except Exception as exc:  # a health probe reports failures, it does not raise them
        result = {"status": "error", "detail": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis() -> None:
    key = "health:probe"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("redis read-back mismatch")


def _celery() -> dict[str, Any]:
    workers = workers_alive()
    if not workers:
        raise RuntimeError("no worker heartbeat")
    return {"workers": workers}


class HealthCheckSerializer(serializers.Serializer[object]):
    status = serializers.ChoiceField(choices=["ok", "error"])
    latency_ms = serializers.FloatField()
    detail = serializers.CharField(required=False, help_text="Exception type when the check failed.")
    workers = serializers.IntegerField(required=False, help_text="Celery only: workers with a recent heartbeat.")


class HealthChecksSerializer(serializers.Serializer[object]):
    database = HealthCheckSerializer()
    redis = HealthCheckSerializer()
    celery = HealthCheckSerializer()


class HealthSerializer(serializers.Serializer[object]):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    version = serializers.CharField()
    checks = HealthChecksSerializer()


class HealthApi(APIView):
    """Public liveness/readiness probe. 200 when everything answers, 503 ("degraded") otherwise.

    It names components and exception types only: never connection strings or hosts.
    """

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        checks = {"database": _timed(_database), "redis": _timed(_redis), "celery": _timed(_celery)}
        checks["celery"].setdefault("workers", 0)
        ok = all(c["status"] == "ok" for c in checks.values())
        body = {"status": "ok" if ok else "degraded", "version": settings.APP_VERSION, "checks": checks}
        return Response(body, status=200 if ok else 503)
