"""Request and response shapes of the scheduling API (documented in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from scheduling.models import AppointmentStatus, ExceptionKind, Modality, ResourceKind


class ResourceSerializer(serializers.Serializer[Any]):
    schedule_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ResourceKind.choices)
    name = serializers.CharField()


class AppointmentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    patient_display_name = serializers.CharField(help_text="Empty when the viewer may not see the patient's name.")
    patient_mrn = serializers.CharField()
    appointment_type_id = serializers.IntegerField()
    appointment_type_name = serializers.CharField()
    practitioner_id = serializers.IntegerField()
    practitioner_display_name = serializers.CharField()
    location_id = serializers.IntegerField()
    location_name = serializers.CharField()
    modality = serializers.ChoiceField(choices=Modality.choices)
    status = serializers.ChoiceField(choices=AppointmentStatus.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    resources = ResourceSerializer(many=True)
    encounter_id = serializers.IntegerField(allow_null=True)
    series_id = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField()
    cancel_reason = serializers.CharField()
    override_reason = serializers.CharField()
    arrived_at = serializers.DateTimeField(allow_null=True)
    checked_in_at = serializers.DateTimeField(allow_null=True)
    visit_started_at = serializers.DateTimeField(allow_null=True)
    fulfilled_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AppointmentListSerializer(serializers.Serializer[Any]):
    results = AppointmentSerializer(many=True)


class AppointmentWindowQuerySerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField(help_text="Window start (ISO 8601 with offset).")
    end = serializers.DateTimeField(help_text="Window end; at most 62 days after start.")
    location = serializers.IntegerField(required=False)
    practitioner = serializers.IntegerField(required=False)
    schedule = serializers.IntegerField(required=False)
    status = serializers.MultipleChoiceField(choices=AppointmentStatus.choices, required=False)


class InstantField(serializers.CharField):
    """An ISO 8601 instant; without an offset it is a wall-clock time in ``time_zone`` (checked for DST gaps)."""


class BookingSerializer(serializers.Serializer[Any]):
    appointment_type_id = serializers.IntegerField()
    patient_id = serializers.IntegerField(required=False, help_text="Staff: whom to book. Patients: omit (self).")
    start = InstantField(help_text="ISO 8601 with offset, or wall-clock time with time_zone.")
    time_zone = serializers.CharField(required=False, help_text="IANA zone of a wall-clock start.")
    practitioner_id = serializers.IntegerField()
    resource_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=10)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500)
    override_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Schedulers/admins: deliberate double booking."
    )


class HoldRequestSerializer(serializers.Serializer[Any]):
    appointment_type_id = serializers.IntegerField()
    patient_id = serializers.IntegerField(required=False)
    start = InstantField()
    time_zone = serializers.CharField(required=False)
    practitioner_id = serializers.IntegerField()
    resource_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=10)


class HoldSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    patient_id = serializers.IntegerField()
    appointment_type_id = serializers.IntegerField()
    practitioner_id = serializers.IntegerField()
    location_id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    resources = ResourceSerializer(many=True)


class HoldConfirmSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RescheduleSerializer(serializers.Serializer[Any]):
    start = InstantField()
    time_zone = serializers.CharField(required=False)
    practitioner_id = serializers.IntegerField(required=False)
    resource_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=10)
    reason = serializers.CharField(max_length=500)
    override_reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class CancelSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


class StatusChangeSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(
        choices=[
            AppointmentStatus.ARRIVED,
            AppointmentStatus.CHECKED_IN,
            AppointmentStatus.FULFILLED,
            AppointmentStatus.NOSHOW,
            AppointmentStatus.ENTERED_IN_ERROR,
        ]
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class SlotQuerySerializer(serializers.Serializer[Any]):
    appointment_type = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    practitioner = serializers.IntegerField(required=False)
    location = serializers.IntegerField(required=False)


class FreeSlotSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    practitioner_id = serializers.IntegerField()
    practitioner_display_name = serializers.CharField()
    location_id = serializers.IntegerField()
    resources = ResourceSerializer(many=True)


class FreeSlotListSerializer(serializers.Serializer[Any]):
    results = FreeSlotSerializer(many=True)


class AppointmentTypeSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    modality = serializers.ChoiceField(choices=Modality.choices)
    duration_minutes = serializers.IntegerField()
    buffer_before_minutes = serializers.IntegerField()
    buffer_after_minutes = serializers.IntegerField()
    slot_interval_minutes = serializers.IntegerField()
    min_notice_minutes = serializers.IntegerField()
    horizon_days = serializers.IntegerField()
    cancellation_window_minutes = serializers.IntegerField()
    patient_bookable = serializers.BooleanField()
    requirements = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


class AppointmentTypeListSerializer(serializers.Serializer[Any]):
    results = AppointmentTypeSerializer(many=True)


class ScheduleSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ResourceKind.choices)
    name = serializers.CharField()
    category = serializers.CharField()
    practitioner_id = serializers.IntegerField(allow_null=True)
    location_id = serializers.IntegerField()
    location_name = serializers.CharField()
    time_zone = serializers.CharField()


class ScheduleListSerializer(serializers.Serializer[Any]):
    results = ScheduleSerializer(many=True)


class AvailabilityRuleSerializer(serializers.Serializer[Any]):
    weekday = serializers.IntegerField(min_value=0, max_value=6)
    start_time = serializers.TimeField()
    end_time = serializers.TimeField()
    effective_from = serializers.DateField()
    effective_until = serializers.DateField(required=False, allow_null=True)


class AvailabilityExceptionSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=ExceptionKind.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class AvailabilitySerializer(serializers.Serializer[Any]):
    schedule_id = serializers.IntegerField(read_only=True)
    time_zone = serializers.CharField(read_only=True)
    rules = AvailabilityRuleSerializer(many=True)
    exceptions = AvailabilityExceptionSerializer(many=True, read_only=True)


class WaitlistJoinSerializer(serializers.Serializer[Any]):
    appointment_type_id = serializers.IntegerField()
    patient_id = serializers.IntegerField(required=False)
    practitioner_id = serializers.IntegerField(required=False, allow_null=True)
    earliest = serializers.DateTimeField()
    latest = serializers.DateTimeField()


class WaitlistEntrySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    appointment_type_id = serializers.IntegerField()
    practitioner_id = serializers.IntegerField(allow_null=True)
    earliest = serializers.DateTimeField()
    latest = serializers.DateTimeField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class WaitlistOfferSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    appointment_type_id = serializers.IntegerField()
    practitioner_id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()


class MyWaitlistSerializer(serializers.Serializer[Any]):
    entries = WaitlistEntrySerializer(many=True)
    offers = WaitlistOfferSerializer(many=True)
