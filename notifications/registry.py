"""How apps above notifications plug in without notifications importing them (same pattern as
``core.realtime.streams.register_group_authoriser``).

- Action handlers: an inbound SMS reply acts on the thing a reminder was about (``"appointment.confirm"``,
  ``"appointment.cancel"``, ``"appointment.reschedule_request"``). A handler takes ``source_id`` and
  ``patient_id`` and returns a short result code (``"confirmed"``, ``"too_late"``, …).
- Context providers: values minted at send time for a message of a template key (e.g. the signed check-in link
  of a video reminder). A provider takes the message's context and returns the extra members.
- Source checks: whether a source (``"appointment"``, id) still wants its messages; a message whose source is
  gone (cancelled, no-show, fulfilled) is withdrawn at dispatch instead of sent. A source type may also register a
  check of many ids at once (one query for a whole dispatch pass).

Registrations happen in ``AppConfig.ready``; the dictionaries are process-global and read-only afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ActionHandler = Callable[[str, int], str]
ContextProvider = Callable[[dict[str, Any]], dict[str, Any]]
SourceCheck = Callable[[str], bool]
SourceCheckMany = Callable[[list[str]], set[str]]  # the ids (of those given) whose source is still current

_actions: dict[str, ActionHandler] = {}
_context_providers: dict[str, list[ContextProvider]] = {}
_source_checks: dict[str, SourceCheck] = {}
_source_checks_many: dict[str, SourceCheckMany] = {}


def register_action_handler(name: str, handler: ActionHandler) -> None:
    _actions[name] = handler


def register_context_provider(template_key: str, provider: ContextProvider) -> None:
    providers = _context_providers.setdefault(template_key, [])
    if provider not in providers:
        providers.append(provider)


def register_source_check(source_type: str, check: SourceCheck, many: SourceCheckMany | None = None) -> None:
    _source_checks[source_type] = check
    if many is not None:
        _source_checks_many[source_type] = many


def action_handler(name: str) -> ActionHandler | None:
    return _actions.get(name)


def context_providers(template_key: str) -> list[ContextProvider]:
    return list(_context_providers.get(template_key, []))


def source_is_current(source_type: str, source_id: str) -> bool:
    check = _source_checks.get(source_type)
    return True if check is None else check(source_id)


def sources_current(source_type: str, source_ids: list[str]) -> set[str]:
    """Of ``source_ids`` (all of one type), the ones whose source still wants its messages."""
    many = _source_checks_many.get(source_type)
    if many is not None:
        return many(source_ids)
    return {source_id for source_id in source_ids if source_is_current(source_type, source_id)}
