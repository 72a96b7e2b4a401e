"""System checks: refuse to start with unusable field-encryption settings rather than fail on the first patient."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from ehr.crypto import check_configuration


@register()
def field_encryption_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(problem, hint="See docs/ehr.md (encryption) and docs/operations.md.", id="ehr.E001")
        for problem in check_configuration()
    ]
