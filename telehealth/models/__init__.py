from telehealth.models.clinicians import ClinicianNotice, ClinicianPresence, PresenceStatus
from telehealth.models.guests import GuestRole, VisitInvitation, VisitRelayReport, guest_participant_id
from telehealth.models.intake import IntakeQuestion, QuestionKind
from telehealth.models.links import CheckInLink
from telehealth.models.messages import MessageKind, VisitMessage
from telehealth.models.quality import CallQualityReport
from telehealth.models.visits import MediaMode, Visit, VisitStatus

__all__ = [
    "CallQualityReport",
    "CheckInLink",
    "ClinicianNotice",
    "ClinicianPresence",
    "GuestRole",
    "IntakeQuestion",
    "MediaMode",
    "MessageKind",
    "PresenceStatus",
    "QuestionKind",
    "Visit",
    "VisitInvitation",
    "VisitMessage",
    "VisitRelayReport",
    "VisitStatus",
    "guest_participant_id",
]
