"""Writes of the ehr app. Every function owns its transaction; see each docstring for who may call it."""

from ehr.services.sessions import session_sign_in, session_sign_out
from ehr.services.users import user_activate, user_deactivate

__all__ = ["session_sign_in", "session_sign_out", "user_activate", "user_deactivate"]
