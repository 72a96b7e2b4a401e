from scheduling.models.appointments import (
    BLOCKING_SLOT_STATUSES,
    Appointment,
    AppointmentEvent,
    AppointmentSeries,
    AppointmentStatus,
    Hold,
    HoldStatus,
    Slot,
    SlotStatus,
)
from scheduling.models.reminders import ReminderPlan
from scheduling.models.resources import (
    AvailabilityException,
    AvailabilityRule,
    ExceptionKind,
    ResourceKind,
    Schedule,
)
from scheduling.models.types import AppointmentType, Modality, ResourceRequirement
from scheduling.models.waitlist import OfferStatus, WaitlistEntry, WaitlistOffer, WaitlistStatus

__all__ = [
    "BLOCKING_SLOT_STATUSES",
    "Appointment",
    "AppointmentEvent",
    "AppointmentSeries",
    "AppointmentStatus",
    "AppointmentType",
    "AvailabilityException",
    "AvailabilityRule",
    "ExceptionKind",
    "Hold",
    "HoldStatus",
    "Modality",
    "OfferStatus",
    "ReminderPlan",
    "ResourceKind",
    "ResourceRequirement",
    "Schedule",
    "Slot",
    "SlotStatus",
    "WaitlistEntry",
    "WaitlistOffer",
    "WaitlistStatus",
]
