from django.urls import path

from notifications.api import views

app_name = "notifications"

urlpatterns = [
    path("health/", views.HealthApi.as_view(), name="health"),
    path("failures/", views.FailureListApi.as_view(), name="failures"),
    path("messages/<str:message_id>/resend/", views.MessageResendApi.as_view(), name="message-resend"),
    path("preferences/", views.PreferenceApi.as_view(), name="preferences"),
    path("twilio/status/", views.TwilioStatusCallbackApi.as_view(), name="twilio-status"),
    path("twilio/inbound/", views.TwilioInboundApi.as_view(), name="twilio-inbound"),
]
