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
    path("queue/", views.QueueApi.as_view(), name="telehealth-queue"),
    path("presence/", views.PresenceApi.as_view(), name="telehealth-presence"),
    path("notice/", views.NoticeApi.as_view(), name="telehealth-notice"),
    path("colleagues/", views.ColleagueListApi.as_view(), name="telehealth-colleagues"),
    path("quality/", views.QualityOverviewApi.as_view(), name="telehealth-quality"),
]
