"""Local stand-ins for the third parties Consulta's notifications talk to, speaking their real protocols.

- ``tests.fakes.twilio_server``: Twilio's REST API (Messages, Calls) over HTTP, with signed status callbacks and
  inbound-SMS webhooks, for the real ``twilio`` SDK.
- ``tests.fakes.smtp_server``: an SMTP server (aiosmtpd) for Django's SMTP email backend.

Each runs in a thread of the test process (a Python handle to steer and inspect it) or as its own process
(``python -m tests.fakes.twilio_server ...`` / ``python -m tests.fakes.smtp_server ...``) steered over a small admin
HTTP API under ``/_fake/`` and mirrored to a JSON state file. ``scripts/fake_providers.sh`` runs both for ``make run``.
Nothing here imports Django or our apps: the fakes are the far side of the wire.
"""
