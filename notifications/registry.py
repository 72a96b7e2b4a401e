"""How apps above notifications plug in without notifications importing them (same pattern as
``core.realtime.streams.register_group_authoriser``).

- Action handlers: an inbound SMS reply acts on the thing a reminder was about (``"appointment.confirm"``,
  ``"appointment.cancel"``, ``"appointment.reschedule_request"``). A handler takes ``source_id`` and
  ``patient_id`` and returns a short result code (``"confirmed"``, ``"too_late"``, …).
- Context providers: values minted at send time for a message of a template key (e.g. the signed check-in link
  of a video reminder). A provider takes the message's context and returns the extra members.
- Source checks: whether a source (``"appointment"``, id) still wants its messages; a message whose source is
  gone (cancelled, no-show, fulfilled) is withdrawn at dispatch instead of sent.

Registrations happen in ``AppConfig.ready``; the dictionaries are process-global and read-only afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ActionHandler = Callable[[str, int], str]
ContextProvider = Callable[[dict[str, Any]], dict[str, Any]]
SourceCheck = Callable[[str], bool]

_actions: dict[str, ActionHandler] = {}
_context_providers: dict[str, list[ContextProvider]] = {}
_source_checks: dict[str, SourceCheck] = {}


def register_action_handler(name: str, handler: ActionHandler) -> None:
    _actions[name] = handler


def register_context_provider(template_key: str, provider: ContextProvider) -> None:
    providers = _context_providers.setdefault(template_key, [])
    if provider not in providers:
        providers.append(provider)


def register_source_check(source_type: str, check: SourceCheck) -> None:
    _source_checks[source_type] = check


def action_handler(name: str) -> ActionHandler | None:
    return _actions.get(name)


def context_providers(template_key: str) -> list[ContextProvider]:
    return list(_context_providers.get(template_key, []))


def source_is_current(source_type: str, source_id: str) -> bool:
    check = _source_checks.get(source_type)
    return True if check is None else check(source_id)
