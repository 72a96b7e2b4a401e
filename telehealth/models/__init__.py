from telehealth.models.clinicians import ClinicianNotice, ClinicianPresence, PresenceStatus
from telehealth.models.intake import IntakeQuestion, QuestionKind
from telehealth.models.links import CheckInLink
from telehealth.models.messages import MessageKind, VisitMessage
from telehealth.models.quality import CallQualityReport
from telehealth.models.visits import Visit, VisitStatus

__all__ = [
    "CallQualityReport",
    "CheckInLink",
    "ClinicianNotice",
    "ClinicianPresence",
    "IntakeQuestion",
    "MessageKind",
    "PresenceStatus",
    "QuestionKind",
    "Visit",
    "VisitMessage",
    "VisitStatus",
]
