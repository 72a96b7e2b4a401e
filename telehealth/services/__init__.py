"""Writes of telehealth. Every service is keyword-only, owns one ``transaction.atomic()``, records its events in
it and sends to sockets after commit (docs/telehealth.md). Import from here: the names are fixed for the
signaling consumer and the API."""

from telehealth.services.presence import visit_presence_mark

__all__ = ["visit_presence_mark"]
