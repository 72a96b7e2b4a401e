from notifications.models.inbound import InboundAction, InboundSms
from notifications.models.messages import (
    Channel,
    DeliveryAttempt,
    MessageState,
    OutboundMessage,
    Provider,
)
from notifications.models.preferences import ContactPreference, StaffContact
from notifications.models.templates import MessageTemplate

__all__ = [
    "Channel",
    "ContactPreference",
    "DeliveryAttempt",
    "InboundAction",
    "InboundSms",
    "MessageState",
    "MessageTemplate",
    "OutboundMessage",
    "Provider",
    "StaffContact",
]
