"""Request and response shapes of the telehealth API (documented in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

# Choice sets named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] (one schema enum each).
DEVICE_CHECK_RESULTS = ["pass", "fail", "skipped"]
CANDIDATE_TYPES = ["host", "srflx", "prflx", "relay"]
VISIT_STATUSES = ["waiting", "in-progress", "finished", "left"]
GUEST_ROLES = ["interpreter", "family", "clinician"]
MEDIA_MODES = ["direct", "relay"]
INVITATION_STATUSES = ["invited", "used", "admitted", "removed", "expired"]
GUEST_STATES = ["not_started", "waiting", "admitted", "removed", "ended"]

# --- requests ---------------------------------------------------------------------------------------------------------


class CheckInSerializer(serializers.Serializer[Any]):
    consent = serializers.BooleanField(help_text="Must be true: the patient consents to a video visit.")
    answers = serializers.DictField(help_text="Intake answers keyed by question id (text or true/false).")


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(max_length=500)


class IceSerializer(serializers.Serializer[Any]):
    visit_id = serializers.UUIDField(required=False, allow_null=True)


class DeviceCheckSerializer(serializers.Serializer[Any]):
    camera = serializers.ChoiceField(choices=DEVICE_CHECK_RESULTS)
    microphone = serializers.ChoiceField(choices=DEVICE_CHECK_RESULTS)
    speaker = serializers.ChoiceField(choices=DEVICE_CHECK_RESULTS)
    turn = serializers.ChoiceField(choices=DEVICE_CHECK_RESULTS)


class TransferSerializer(serializers.Serializer[Any]):
    practitioner_id = serializers.IntegerField()


class EndSerializer(serializers.Serializer[Any]):
    summary = serializers.CharField(required=False, allow_blank=True, max_length=4000, trim_whitespace=True)
    audio_only = serializers.BooleanField(required=False)


class MessageBodySerializer(serializers.Serializer[Any]):
    body = serializers.CharField(max_length=1000)


class QualityStatsSerializer(serializers.Serializer[Any]):
    rtt_ms = serializers.FloatField(required=False, allow_null=True)
    jitter_ms = serializers.FloatField(required=False, allow_null=True)
    packet_loss_pct = serializers.FloatField(required=False, allow_null=True)
    bitrate_in_kbps = serializers.FloatField(required=False, allow_null=True)
    bitrate_out_kbps = serializers.FloatField(required=False, allow_null=True)
    frames_decoded = serializers.IntegerField(required=False, allow_null=True)
    frames_per_second = serializers.FloatField(required=False, allow_null=True)
    frame_width = serializers.IntegerField(required=False, allow_null=True)
    frame_height = serializers.IntegerField(required=False, allow_null=True)
    local_candidate_type = serializers.ChoiceField(choices=CANDIDATE_TYPES, required=False, allow_null=True)
    remote_candidate_type = serializers.ChoiceField(choices=CANDIDATE_TYPES, required=False, allow_null=True)
    relay = serializers.BooleanField(required=False, allow_null=True)
    audio_only = serializers.BooleanField(required=False, allow_null=True)


class QualityBodySerializer(serializers.Serializer[Any]):
    stats = QualityStatsSerializer()


class PresenceBeatSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["available", "away"], required=False)


class NoticeBodySerializer(serializers.Serializer[Any]):
    body = serializers.CharField(max_length=280)


# --- responses --------------------------------------------------------------------------------------------------------


class PersonSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class IntakeAnswerSerializer(serializers.Serializer[Any]):
    question = serializers.CharField()
    answer = serializers.JSONField()


class DeviceCheckResultSerializer(serializers.Serializer[Any]):
    camera = serializers.CharField(required=False)
    microphone = serializers.CharField(required=False)
    speaker = serializers.CharField(required=False)
    turn = serializers.CharField(required=False)
    checked_at = serializers.DateTimeField(required=False)


class VisitDetailSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    appointment_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=VISIT_STATUSES)
    practitioner = PersonSerializer()
    patient_name = serializers.CharField()
    checked_in_at = serializers.DateTimeField()
    admitted_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.IntegerField(allow_null=True)
    ready = serializers.BooleanField()
    device_check = DeviceCheckResultSerializer()
    summary = serializers.CharField()
    audio_only = serializers.BooleanField()
    version = serializers.IntegerField()
    role = serializers.ChoiceField(choices=["patient", "practitioner", "staff"])
    media_mode = serializers.ChoiceField(choices=MEDIA_MODES)
    patient_id = serializers.IntegerField(required=False, help_text="Staff and practitioner only.")
    encounter_id = serializers.IntegerField(required=False, allow_null=True, help_text="Staff and practitioner only.")
    intake = IntakeAnswerSerializer(many=True, required=False, help_text="Staff and practitioner only.")


class CheckInAppointmentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    practitioner_name = serializers.CharField()
    type_name = serializers.CharField()


class IntakeQuestionSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    text = serializers.CharField()
    kind = serializers.ChoiceField(choices=["text", "yesno"])
    required = serializers.BooleanField()  # type: ignore[assignment]  # the question's flag, not Field.required


class CheckInInfoSerializer(serializers.Serializer[Any]):
    appointment = CheckInAppointmentSerializer()
    consent_text = serializers.CharField()
    questions = IntakeQuestionSerializer(many=True)
    visit_id = serializers.UUIDField(allow_null=True)
    visit_status = serializers.CharField(allow_null=True)
    opens_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    can_check_in = serializers.BooleanField()


class ConsumedLinkSerializer(serializers.Serializer[Any]):
    appointment_id = serializers.IntegerField()


class CheckInLinkSerializer(serializers.Serializer[Any]):
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class IceServerSerializer(serializers.Serializer[Any]):
    urls = serializers.ListField(child=serializers.CharField())
    username = serializers.CharField(required=False)
    credential = serializers.CharField(required=False)


class IceConfigSerializer(serializers.Serializer[Any]):
    iceServers = IceServerSerializer(many=True)  # noqa: N815 -- RTCConfiguration's own member name
    iceTransportPolicy = serializers.ChoiceField(choices=["all", "relay"])  # noqa: N815
    expiresAt = serializers.DateTimeField()  # noqa: N815
    ttlSeconds = serializers.IntegerField()  # noqa: N815


class NoticeSerializer(serializers.Serializer[Any]):
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


class WaitingInfoSerializer(serializers.Serializer[Any]):
    visit_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=VISIT_STATUSES)
    position = serializers.IntegerField(allow_null=True)
    ahead = serializers.IntegerField(allow_null=True)
    estimated_wait_minutes = serializers.IntegerField(allow_null=True)
    doctor_name = serializers.CharField()
    doctor_status = serializers.ChoiceField(choices=["in-visit", "available", "away", "offline"])
    notice = NoticeSerializer(allow_null=True)
    ready = serializers.BooleanField()


class QueueEntrySerializer(serializers.Serializer[Any]):
    visit_id = serializers.UUIDField()
    appointment_id = serializers.IntegerField()
    patient_name = serializers.CharField()
    appointment_start = serializers.DateTimeField()
    checked_in_at = serializers.DateTimeField()
    waiting_seconds = serializers.IntegerField()
    ready = serializers.BooleanField()
    device_check = DeviceCheckResultSerializer()
    intake = IntakeAnswerSerializer(many=True)
    connected = serializers.BooleanField()
    position = serializers.IntegerField()
    practitioner_id = serializers.IntegerField()
    practitioner_name = serializers.CharField()


class PresenceSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["available", "away", "offline"])
    last_seen_at = serializers.DateTimeField(allow_null=True)


class CurrentVisitSerializer(serializers.Serializer[Any]):
    visit_id = serializers.UUIDField()
    appointment_id = serializers.IntegerField()
    patient_name = serializers.CharField()
    admitted_at = serializers.DateTimeField()


class ClinicQueueSerializer(serializers.Serializer[Any]):
    mine = QueueEntrySerializer(many=True)
    pool = QueueEntrySerializer(many=True)
    notice = NoticeSerializer(allow_null=True)
    presence = PresenceSerializer()
    current_visit = CurrentVisitSerializer(allow_null=True)


class MessageSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    visit_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["chat", "notice"])
    body = serializers.CharField()
    sender_id = serializers.IntegerField(allow_null=True)
    sender_name = serializers.CharField()
    sender_role = serializers.ChoiceField(choices=["patient", "practitioner", "staff", "system"])
    created_at = serializers.DateTimeField()


class MessageListSerializer(serializers.Serializer[Any]):
    results = MessageSerializer(many=True)


class QualityReportSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    visit_id = serializers.UUIDField()
    user_id = serializers.IntegerField()
    user_name = serializers.CharField()
    role = serializers.ChoiceField(choices=["patient", "practitioner"])
    created_at = serializers.DateTimeField()
    stats = QualityStatsSerializer()


class RelayTrackSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["audio", "video"])
    source = serializers.CharField(help_text="The participant whose media this track carries.")  # type: ignore[assignment]  # the wire name, not Field.source
    mode = serializers.ChoiceField(choices=["forward", "transcode"])
    codec = serializers.CharField(allow_null=True)
    source_codec = serializers.CharField(allow_null=True, required=False)
    packets = serializers.IntegerField()
    bytes = serializers.IntegerField()
    keyframe_requests = serializers.IntegerField()
    dropped = serializers.IntegerField(required=False)
    encoded_frames = serializers.IntegerField(required=False, help_text="Frames the relay encoded (transcode only).")


class RelayReportSerializer(serializers.Serializer[Any]):
    participant_id = serializers.CharField()
    updated_at = serializers.DateTimeField()
    tracks = RelayTrackSerializer(many=True)
    forwarded = serializers.IntegerField(help_text="Tracks forwarded without re-encoding.")
    transcoded = serializers.IntegerField(help_text="Tracks the relay had to decode and re-encode.")
    connection = serializers.CharField(allow_null=True)


class QualityReportListSerializer(serializers.Serializer[Any]):
    results = QualityReportSerializer(many=True)
    relay_reports = RelayReportSerializer(many=True, help_text="The media relay's latest telemetry per participant.")


class VisitQualitySummarySerializer(serializers.Serializer[Any]):
    visit_id = serializers.UUIDField()
    appointment_id = serializers.IntegerField()
    status = serializers.CharField()
    practitioner_name = serializers.CharField()
    admitted_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.IntegerField(allow_null=True)
    reports = QualityReportSerializer(many=True)
    media_mode = serializers.ChoiceField(choices=MEDIA_MODES)
    relay_reports = RelayReportSerializer(many=True)


class QualityOverviewSerializer(serializers.Serializer[Any]):
    results = VisitQualitySummarySerializer(many=True)


class ColleagueListSerializer(serializers.Serializer[Any]):
    results = PersonSerializer(many=True)


# --- guests (issue 7) -------------------------------------------------------------------------------------------------


class InvitationCreateSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=GUEST_ROLES)
    name = serializers.CharField(max_length=80, help_text="Shown to everyone in the visit.")
    expires_in_minutes = serializers.IntegerField(min_value=5, max_value=1440, required=False, default=120)


class InvitationSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    participant_id = serializers.CharField()
    appointment_id = serializers.IntegerField()
    visit_id = serializers.UUIDField(allow_null=True)
    role = serializers.ChoiceField(choices=GUEST_ROLES)
    name = serializers.CharField()
    url = serializers.CharField(help_text="The absolute join link (shown once; lists never carry it).")
    expires_at = serializers.DateTimeField()


class InvitationSummarySerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    participant_id = serializers.CharField()
    role = serializers.ChoiceField(choices=GUEST_ROLES)
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=INVITATION_STATUSES)
    expires_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)
    admitted_at = serializers.DateTimeField(allow_null=True)
    removed_at = serializers.DateTimeField(allow_null=True)
    muted = serializers.BooleanField()
    connected = serializers.BooleanField()
    ready = serializers.BooleanField()
    device_check = DeviceCheckResultSerializer()
    created_at = serializers.DateTimeField()
    created_by_name = serializers.CharField()


class InvitationListSerializer(serializers.Serializer[Any]):
    results = InvitationSummarySerializer(many=True)


class GuestInfoSerializer(serializers.Serializer[Any]):
    invitation_id = serializers.UUIDField()
    participant_id = serializers.CharField()
    appointment_id = serializers.IntegerField()
    visit_id = serializers.UUIDField(allow_null=True)
    visit_status = serializers.ChoiceField(choices=VISIT_STATUSES, allow_null=True)
    role = serializers.ChoiceField(choices=GUEST_ROLES)
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=GUEST_STATES)
    media_mode = serializers.ChoiceField(choices=MEDIA_MODES)
    practitioner_name = serializers.CharField()
    appointment_start = serializers.DateTimeField(allow_null=True)
    device_check = DeviceCheckResultSerializer()
    ready = serializers.BooleanField()


class MuteSerializer(serializers.Serializer[Any]):
    audio = serializers.BooleanField(help_text="false mutes, true unmutes.")


class GuestAdmittedSerializer(serializers.Serializer[Any]):
    participant_id = serializers.CharField()
    media_mode = serializers.ChoiceField(choices=MEDIA_MODES)


class MutedSerializer(serializers.Serializer[Any]):
    participant_id = serializers.CharField()
    audio = serializers.BooleanField()


class RemovedSerializer(serializers.Serializer[Any]):
    participant_id = serializers.CharField()
    removed = serializers.BooleanField()


class MediaModeSerializer(serializers.Serializer[Any]):
    media_mode = serializers.ChoiceField(choices=MEDIA_MODES)
