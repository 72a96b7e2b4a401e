"""Wire names of the events ehr publishes on the realtime spine (docs/realtime.md lists their payloads)."""

SESSION_SIGNED_IN_ELSEWHERE = "session.signed_in_elsewhere"
SESSION_REVOKED = "session.revoked"
USER_UPDATED = "user.updated"

# Close code sent with session.revoked: the socket is shut and the client must not reconnect.
CLOSE_SESSION_REVOKED = 4403
