"""Writes of telehealth. Every service is keyword-only, owns one ``transaction.atomic()``, records its events in
it and sends to sockets after commit (docs/telehealth.md). Import from here: the names are fixed for the
signaling consumer and the API."""

from telehealth.services.clinicians import clinician_presence_touch
from telehealth.services.guests import (
    guest_admit,
    guest_device_check_record,
    guest_presence_mark,
    guest_remove,
    invitation_consume,
    invitation_create,
    participant_mute,
    participant_mute_set,
    participant_unmute,
    visit_media_mode_set,
    visit_relay_report,
)
from telehealth.services.ice import ice_servers_issue
from telehealth.services.links import checkin_link_consume, checkin_link_create
from telehealth.services.messages import clinician_notice_clear, clinician_notice_set, visit_message_send
from telehealth.services.presence import visit_presence_mark
from telehealth.services.quality import visit_quality_report
from telehealth.services.relay import relay_token_issue, relay_token_verify
from telehealth.services.visits import (
    visit_admit,
    visit_check_in,
    visit_device_check_record,
    visit_end,
    visit_leave,
    visit_transfer,
    visits_expire_grace,
)

__all__ = [
    "checkin_link_consume",
    "checkin_link_create",
    "clinician_notice_clear",
    "clinician_notice_set",
    "clinician_presence_touch",
    "guest_admit",
    "guest_device_check_record",
    "guest_presence_mark",
    "guest_remove",
    "ice_servers_issue",
    "invitation_consume",
    "invitation_create",
    "participant_mute",
    "participant_mute_set",
    "participant_unmute",
    "relay_token_issue",
    "relay_token_verify",
    "visit_admit",
    "visit_check_in",
    "visit_device_check_record",
    "visit_end",
    "visit_leave",
    "visit_media_mode_set",
    "visit_message_send",
    "visit_presence_mark",
    "visit_quality_report",
    "visit_relay_report",
    "visit_transfer",
    "visits_expire_grace",
]
