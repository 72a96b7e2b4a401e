"""Shapes of the notifications API (documentation for the OpenAPI schema; views build the bodies from DTOs)."""

from __future__ import annotations

from rest_framework import serializers

CHANNELS = ["sms", "email", "voice"]
MESSAGE_STATES = ["queued", "sending", "sent", "delivered", "failed", "undeliverable", "withdrawn"]
PREFERENCE_CHANNELS = ["sms", "email"]


class NotificationHealthDaySerializer(serializers.Serializer[object]):
    date = serializers.DateField()
    channel = serializers.ChoiceField(choices=CHANNELS)
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    undeliverable = serializers.IntegerField()
    fell_back = serializers.IntegerField()


class NotificationHealthTotalsSerializer(serializers.Serializer[object]):
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    fell_back = serializers.IntegerField()
    delivery_rate = serializers.FloatField(allow_null=True)


class NotificationHealthSerializer(serializers.Serializer[object]):
    days = NotificationHealthDaySerializer(many=True)
    totals = NotificationHealthTotalsSerializer()


class MessageFailureSerializer(serializers.Serializer[object]):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    channel = serializers.ChoiceField(choices=CHANNELS)
    state = serializers.ChoiceField(choices=MESSAGE_STATES)
    attempts = serializers.IntegerField()
    last_error_code = serializers.CharField()
    recipient_masked = serializers.CharField()
    patient_name = serializers.CharField()
    created_at = serializers.DateTimeField()
    fell_back_to = serializers.ChoiceField(choices=CHANNELS, allow_null=True)
    resendable = serializers.BooleanField()


class MessageFailurePageSerializer(serializers.Serializer[object]):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MessageFailureSerializer(many=True)


class ResentSerializer(serializers.Serializer[object]):
    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=MESSAGE_STATES)


class LanguageSerializer(serializers.Serializer[object]):
    code = serializers.CharField()
    name = serializers.CharField()


class NotificationPreferenceSerializer(serializers.Serializer[object]):
    channels = serializers.ListField(child=serializers.ChoiceField(choices=PREFERENCE_CHANNELS))
    language = serializers.CharField()
    languages = LanguageSerializer(many=True)
    sms_opt_out = serializers.BooleanField()
    email_opt_out = serializers.BooleanField()
    phone_masked = serializers.CharField()
    email_masked = serializers.CharField()


class NotificationPreferenceUpdateSerializer(serializers.Serializer[object]):
    channels = serializers.ListField(child=serializers.ChoiceField(choices=PREFERENCE_CHANNELS), required=False)
    language = serializers.CharField(required=False)
    sms_opt_out = serializers.BooleanField(required=False)
    email_opt_out = serializers.BooleanField(required=False)
    time_zone = serializers.CharField(required=False, allow_blank=True)


class TwilioStatusSerializer(serializers.Serializer[object]):
    MessageSid = serializers.CharField(required=False)
    MessageStatus = serializers.CharField(required=False)
    CallSid = serializers.CharField(required=False)
    CallStatus = serializers.CharField(required=False)
    ErrorCode = serializers.CharField(required=False)


class TwilioInboundSerializer(serializers.Serializer[object]):
    MessageSid = serializers.CharField()
    From = serializers.CharField()
    Body = serializers.CharField(allow_blank=True)
