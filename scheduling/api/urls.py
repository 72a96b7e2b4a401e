from django.urls import path

from scheduling.api import series, views

urlpatterns = [
    path("appointment-types/", views.AppointmentTypeListApi.as_view(), name="scheduling-appointment-types"),
    path("schedules/", views.ScheduleListApi.as_view(), name="scheduling-schedules"),
    path("schedules/<int:schedule_id>/availability/", views.AvailabilityApi.as_view(), name="scheduling-availability"),
    path(
        "schedules/<int:schedule_id>/exceptions/",
        views.AvailabilityExceptionListApi.as_view(),
        name="scheduling-exceptions",
    ),
    path("exceptions/<int:exception_id>/", views.AvailabilityExceptionApi.as_view(), name="scheduling-exception"),
    path("slots/", views.FreeSlotListApi.as_view(), name="scheduling-slots"),
    path("holds/", views.HoldListApi.as_view(), name="scheduling-holds"),
    path("holds/<str:hold_id>/", views.HoldApi.as_view(), name="scheduling-hold"),
    path("holds/<str:hold_id>/confirm/", views.HoldConfirmApi.as_view(), name="scheduling-hold-confirm"),
    path("appointments/", views.AppointmentListApi.as_view(), name="scheduling-appointments"),
    path("appointments/<int:appointment_id>/", views.AppointmentApi.as_view(), name="scheduling-appointment"),
    path(
        "appointments/<int:appointment_id>/reschedule/",
        views.AppointmentRescheduleApi.as_view(),
        name="scheduling-reschedule",
    ),
    path("appointments/<int:appointment_id>/cancel/", views.AppointmentCancelApi.as_view(), name="scheduling-cancel"),
    path("appointments/<int:appointment_id>/status/", views.AppointmentStatusApi.as_view(), name="scheduling-status"),
    path(
        "appointments/<int:appointment_id>/start-visit/",
        views.AppointmentVisitStartApi.as_view(),
        name="scheduling-visit-start",
    ),
    path(
        "appointments/<int:appointment_id>/complete/",
        views.AppointmentCompleteApi.as_view(),
        name="scheduling-visit-complete",
    ),
    path("me/appointments/", views.MyAppointmentListApi.as_view(), name="scheduling-my-appointments"),
    path("me/waitlist/", views.MyWaitlistApi.as_view(), name="scheduling-my-waitlist"),
    path("waitlist/", views.WaitlistApi.as_view(), name="scheduling-waitlist"),
    path("waitlist/<int:entry_id>/", views.WaitlistEntryApi.as_view(), name="scheduling-waitlist-entry"),
    path("waitlist/offers/<str:offer_id>/accept/", views.WaitlistOfferAcceptApi.as_view(), name="scheduling-accept"),
    path("waitlist/offers/<str:offer_id>/decline/", views.WaitlistOfferDeclineApi.as_view(), name="scheduling-decline"),
    path("series/", series.AppointmentSeriesListApi.as_view(), name="scheduling-series-list"),
    path("series/<int:series_id>/", series.AppointmentSeriesApi.as_view(), name="scheduling-series"),
    path(
        "series/<int:series_id>/cancel/",
        series.AppointmentSeriesCancelApi.as_view(),
        name="scheduling-series-cancel",
    ),
]
