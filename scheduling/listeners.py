"""Appointment status listeners: how apps above scheduling (telehealth) react to an appointment's status change in
the same transaction, without scheduling importing them (DESIGN.md section 3: dependencies point one way).

An app registers a listener in its ``AppConfig.ready``; ``appointment_transition`` calls every listener right after
it moves an appointment, inside the calling service's transaction, so a listener's writes commit or roll back with
the change. Listeners take ids and statuses only and must not call back into scheduling's write services.
"""

from __future__ import annotations

from collections.abc import Callable

StatusListener = Callable[[int, str, str], None]
"""``listener(appointment_id, previous_status, new_status)``."""

_listeners: list[StatusListener] = []


def register_status_listener(listener: StatusListener) -> None:
    """Call ``listener`` on every appointment status change (idempotent: registering twice adds it once)."""
    if listener not in _listeners:
        _listeners.append(listener)


def status_changed(*, appointment_id: int, previous: str, new: str) -> None:
    for listener in _listeners:
        listener(appointment_id, previous, new)
