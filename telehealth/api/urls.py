from django.urls import path

from telehealth.api import views

urlpatterns = [
    path("appointments/<int:appointment_id>/check-in/", views.CheckInApi.as_view(), name="telehealth-check-in"),
    path(
        "appointments/<int:appointment_id>/check-in-link/",
        views.CheckInLinkCreateApi.as_view(),
        name="telehealth-check-in-link",
    ),
    path("check-in-links/consume/", views.CheckInLinkConsumeApi.as_view(), name="telehealth-check-in-link-consume"),
    path("ice-servers/", views.IceServersApi.as_view(), name="telehealth-ice-servers"),
    path("visits/<str:visit_id>/", views.VisitApi.as_view(), name="telehealth-visit"),
    path("visits/<str:visit_id>/device-check/", views.VisitDeviceCheckApi.as_view(), name="telehealth-device-check"),
    path("visits/<str:visit_id>/waiting/", views.VisitWaitingApi.as_view(), name="telehealth-waiting"),
    path("visits/<str:visit_id>/leave/", views.VisitLeaveApi.as_view(), name="telehealth-leave"),
    path("visits/<str:visit_id>/admit/", views.VisitAdmitApi.as_view(), name="telehealth-admit"),
    path("visits/<str:visit_id>/transfer/", views.VisitTransferApi.as_view(), name="telehealth-transfer"),
    path("visits/<str:visit_id>/end/", views.VisitEndApi.as_view(), name="telehealth-end"),
    path("visits/<str:visit_id>/messages/", views.VisitMessageListApi.as_view(), name="telehealth-messages"),
    path("visits/<str:visit_id>/quality/", views.VisitQualityApi.as_view(), name="telehealth-visit-quality"),
    path("visits/<str:visit_id>/invitations/", views.VisitInvitationListApi.as_view(), name="telehealth-invitations"),
    path(
        "appointments/<int:appointment_id>/invitations/",
        views.AppointmentInvitationApi.as_view(),
        name="telehealth-appointment-invitations",
    ),
    path("invitations/consume/", views.InvitationConsumeApi.as_view(), name="telehealth-invitation-consume"),
    path("guest/", views.GuestApi.as_view(), name="telehealth-guest"),
    path("guest/device-check/", views.GuestDeviceCheckApi.as_view(), name="telehealth-guest-device-check"),
    path(
        "visits/<str:visit_id>/guests/<str:participant_id>/admit/",
        views.GuestAdmitApi.as_view(),
        name="telehealth-guest-admit",
    ),
    path(
        "visits/<str:visit_id>/guests/<str:participant_id>/mute/",
        views.ParticipantMuteApi.as_view(),
        name="telehealth-participant-mute",
    ),
    path(
        "visits/<str:visit_id>/guests/<str:participant_id>/remove/",
        views.GuestRemoveApi.as_view(),
        name="telehealth-guest-remove",
    ),
    path("visits/<str:visit_id>/relay/", views.VisitRelayApi.as_view(), name="telehealth-visit-relay"),
    path("queue/", views.QueueApi.as_view(), name="telehealth-queue"),
    path("presence/", views.PresenceApi.as_view(), name="telehealth-presence"),
    path("notice/", views.NoticeApi.as_view(), name="telehealth-notice"),
    path("colleagues/", views.ColleagueListApi.as_view(), name="telehealth-colleagues"),
    path("quality/", views.QualityOverviewApi.as_view(), name="telehealth-quality"),
]
