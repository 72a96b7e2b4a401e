"""Clinical-record API: chart summary, encounters, SOAP notes (autosave with If-Match, sign, addenda), and the
versioned lists (conditions, allergies, medications, observations) with update, entered-in-error and history.

Views parse, call one service or selector, and serialize. Access, validation, versioning and auditing happen in
``ehr.services.clinical`` and ``ehr.selectors``. Writes of existing records require ``If-Match`` (428 without it,
412 when stale); a stale draft save's 412 carries the note as it is now so the editor can merge. A new record for a
patient whose merge committed while the write was on its way is refused with 409 ``patient_merged``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr import selectors
from ehr.api.clinical_serializers import (
    AddendumCreateSerializer,
    AllergyCreateSerializer,
    AllergySerializer,
    AllergyUpdateSerializer,
    ChartSummarySerializer,
    ConditionCreateSerializer,
    ConditionSerializer,
    ConditionUpdateSerializer,
    DraftConflictErrorSerializer,
    EncounterCancelConflictSerializer,
    EncounterCancelSerializer,
    EncounterCreateSerializer,
    EncounterListSerializer,
    EncounterSerializer,
    MedicationCreateSerializer,
    MedicationSerializer,
    MedicationUpdateSerializer,
    NoteListSerializer,
    NoteSectionsSerializer,
    NoteSerializer,
    ObservationCreateSerializer,
    ObservationSerializer,
    ObservationUpdateSerializer,
    PatientMergedErrorSerializer,
    RecordHistoryEntrySerializer,
    RecordHistorySerializer,
    TransitionErrorSerializer,
    list_serializer,
)
from ehr.api.patient_serializers import EnteredInErrorSerializer, VersionConflictErrorSerializer
from ehr.api.patients import ETAG, IF_MATCH, _actor, _expected_version, _reject_unknown, ehr_errors
from ehr.errors import (
    ClinicalRecordNotFound,
    DraftConflict,
    EncounterHasAppointment,
    InvalidClinicalData,
    InvalidTransition,
    NoteSigned,
    NotNoteAuthor,
    PatientMerged,
)
from ehr.services.clinical import (
    clinical_note_add,
    clinical_note_addendum,
    clinical_note_save_draft,
    clinical_note_sign,
    encounter_cancel,
    encounter_close,
    encounter_mark_entered_in_error,
    encounter_open,
)
from ehr.services.clinical.records import (
    ALLERGY,
    CONDITION,
    MEDICATION,
    OBSERVATION,
    RecordKind,
    record_add,
    record_mark_entered_in_error,
    record_update,
)

ERRORS = {400: ApiErrorSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer}
WRITE_ERRORS = {
    **ERRORS,
    409: TransitionErrorSerializer,
    412: VersionConflictErrorSerializer,
    428: ApiErrorSerializer,
}
# Creating a record: a merge of the patient may commit while the write is on its way.
CREATE_ERRORS = {**ERRORS, 409: PatientMergedErrorSerializer}
INCLUDE_EIE = OpenApiParameter(
    "include_entered_in_error", type=bool, required=False, description="Also list records entered in error."
)


@contextmanager
def clinical_errors() -> Iterator[None]:
    """Translate the clinical services' typed errors into the API's error shape (then the patient ones)."""
    with ehr_errors():  # then AccessDenied, PatientNotFound, VersionConflict
        try:
            yield
        except DraftConflict as exc:
            raise ApiError(
                "version_conflict",
                "The draft was saved elsewhere since you loaded it. Merge your text into the current version and save "
                "again with its ETag.",
                status_code=412,
                extra={"current_version": exc.current_version, "current": exc.current},
            ) from None
        except NoteSigned:
            raise ApiError(
                "note_signed", "The note is signed and cannot change. Add an addendum instead.", status_code=409
            ) from None
        except NotNoteAuthor:
            raise ApiError(
                "not_note_author", "Only the note's author may edit its draft or sign it.", status_code=403
            ) from None
        except InvalidTransition as exc:
            raise ApiError(
                "invalid_transition",
                f"A {exc.kind} that is {exc.current} cannot become {exc.target}.",
                status_code=409,
                extra={"current_status": exc.current, "target_status": exc.target},
            ) from None
        except EncounterHasAppointment as exc:
            raise ApiError(
                "cancel_the_appointment",
                "This visit was booked in scheduling; cancel the appointment instead.",
                status_code=409,
                extra={"appointment_id": exc.appointment_id},
            ) from None
        except PatientMerged as exc:
            raise ApiError(
                "patient_merged",
                "This patient record was merged into another one while saving; nothing was saved. Open the surviving "
                "record and enter it there.",
                status_code=409,
                extra={"merged_into_id": exc.merged_into_id},
            ) from None
        except ClinicalRecordNotFound as exc:
            raise ApiError("not_found", f"No such {exc.kind}.", status_code=404) from None
        except InvalidClinicalData as exc:
            raise serializers.ValidationError(exc.fields) from None


def _etag(response: Response, version: int) -> Response:
    response["ETag"] = f'"{version}"'
    return response


def _form(serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    form = serializer_class(data=request.data)
    _reject_unknown(request.data, form)
    form.is_valid(raise_exception=True)
    return dict(form.validated_data)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


# --- Summary and encounters ---------------------------------------------------------------------------------------


class ChartSummaryApi(APIView):
    """The chart's first screen: active problems, allergies, active medications, latest value per vital/lab code."""

    @extend_schema(operation_id="chart_summary", responses={200: ChartSummarySerializer, **ERRORS})
    def get(self, request: Request, patient_id: int) -> Response:
        with clinical_errors():
            summary = selectors.chart_summary_get(
                actor=_actor(request), patient_id=patient_id, request=request._request
            )
        return Response(ChartSummarySerializer(summary).data)


class EncounterListApi(APIView):
    """A patient's encounters (newest first) and opening a new one (in progress, with you as practitioner)."""

    @extend_schema(operation_id="encounters_list", responses={200: EncounterListSerializer, **ERRORS})
    def get(self, request: Request, patient_id: int) -> Response:
        with clinical_errors():
            rows = selectors.encounter_list(actor=_actor(request), patient_id=patient_id, request=request._request)
        return Response({"results": EncounterSerializer(rows, many=True).data})

    @extend_schema(
        operation_id="encounters_open",
        request=EncounterCreateSerializer,
        responses={201: EncounterSerializer, **CREATE_ERRORS},
        parameters=[ETAG],
    )
    def post(self, request: Request, patient_id: int) -> Response:
        body = _form(EncounterCreateSerializer, request)
        with clinical_errors():
            encounter = encounter_open(actor=_actor(request), patient_id=patient_id, request=request._request, **body)
        return _etag(Response(EncounterSerializer(encounter).data, status=status.HTTP_201_CREATED), encounter.version)


class EncounterCloseApi(APIView):
    """Finish an in-progress encounter now (end time and duration recorded); 409 from any other status."""

    @extend_schema(operation_id="encounters_close", request=None, responses={200: EncounterSerializer, **WRITE_ERRORS})
    def post(self, request: Request, encounter_id: int) -> Response:
        with clinical_errors():
            encounter = encounter_close(actor=_actor(request), encounter_id=encounter_id, request=request._request)
        return _etag(Response(EncounterSerializer(encounter).data), encounter.version)


class EncounterEnteredInErrorApi(APIView):
    """Mark an encounter entered in error (If-Match and a reason); nothing is deleted."""

    @extend_schema(
        operation_id="encounters_mark_entered_in_error",
        request=EnteredInErrorSerializer,
        responses={200: EncounterSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, encounter_id: int) -> Response:
        expected = _expected_version(request)
        body = _form(EnteredInErrorSerializer, request)
        with clinical_errors():
            encounter = encounter_mark_entered_in_error(
                actor=_actor(request),
                encounter_id=encounter_id,
                expected_version=expected,
                reason=body["reason"],
                request=request._request,
            )
        return _etag(Response(EncounterSerializer(encounter).data), encounter.version)


class EncounterCancelApi(APIView):
    """Cancel a planned encounter: If-Match and a reason; 409 ``invalid_transition`` once it has started or ended.

    A visit booked in scheduling (``appointment_id`` set) is refused with 409 ``cancel_the_appointment`` and nothing
    is written: the appointment owns the booking, so the client cancels the appointment
    (``POST /api/v1/scheduling/appointments/{appointment_id}/cancel/``), which cancels this encounter as well.
    """

    @extend_schema(
        operation_id="encounters_cancel",
        request=EncounterCancelSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={200: EncounterSerializer, **WRITE_ERRORS, 409: EncounterCancelConflictSerializer},
    )
    def post(self, request: Request, encounter_id: int) -> Response:
        expected = _expected_version(request)
        body = _form(EncounterCancelSerializer, request)
        with clinical_errors():
            encounter = encounter_cancel(
                actor=_actor(request),
                encounter_id=encounter_id,
                reason=body["reason"],
                expected_version=expected,
                unbooked_only=True,
                request=request._request,
            )
        return _etag(Response(EncounterSerializer(encounter).data), encounter.version)


# --- Notes --------------------------------------------------------------------------------------------------------


class NoteListApi(APIView):
    """The notes of an encounter (with addenda), and starting a new draft note."""

    @extend_schema(operation_id="notes_list", responses={200: NoteListSerializer, **ERRORS})
    def get(self, request: Request, encounter_id: int) -> Response:
        with clinical_errors():
            notes = selectors.clinical_note_list(
                actor=_actor(request), encounter_id=encounter_id, request=request._request
            )
        return Response({"results": NoteSerializer(notes, many=True).data})

    @extend_schema(
        operation_id="notes_create",
        request=NoteSectionsSerializer,
        responses={201: NoteSerializer, **CREATE_ERRORS},
        parameters=[ETAG],
    )
    def post(self, request: Request, encounter_id: int) -> Response:
        sections = _form(NoteSectionsSerializer, request)
        with clinical_errors():
            note = clinical_note_add(
                actor=_actor(request), encounter_id=encounter_id, sections=sections, request=request._request
            )
        return _etag(Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED), note.version)


class NoteDetailApi(APIView):
    """Read a note; autosave its draft (If-Match; 412 returns the current sections to merge; 409 once signed)."""

    @extend_schema(operation_id="notes_retrieve", responses={200: NoteSerializer, **ERRORS}, parameters=[ETAG])
    def get(self, request: Request, note_id: int) -> Response:
        with clinical_errors():
            note = selectors.clinical_note_get(actor=_actor(request), note_id=note_id, request=request._request)
        return _etag(Response(NoteSerializer(note).data), note.version)

    @extend_schema(
        operation_id="notes_save_draft",
        request=NoteSectionsSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={200: NoteSerializer, **WRITE_ERRORS, 412: DraftConflictErrorSerializer},
    )
    def patch(self, request: Request, note_id: int) -> Response:
        expected = _expected_version(request)
        sections = _form(NoteSectionsSerializer, request)
        with clinical_errors():
            note = clinical_note_save_draft(
                actor=_actor(request),
                note_id=note_id,
                expected_version=expected,
                sections=sections,
                request=request._request,
            )
        return _etag(Response(NoteSerializer(note).data), note.version)


class NoteSignApi(APIView):
    """Sign the draft at the version you read (If-Match): only its author, a practitioner."""

    @extend_schema(
        operation_id="notes_sign",
        request=None,
        parameters=[IF_MATCH, ETAG],
        responses={200: NoteSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, note_id: int) -> Response:
        expected = _expected_version(request)
        with clinical_errors():
            note = clinical_note_sign(
                actor=_actor(request), note_id=note_id, expected_version=expected, request=request._request
            )
        return _etag(Response(NoteSerializer(note).data), note.version)


class NoteAddendumApi(APIView):
    """Add an addendum to a signed note (the signed content stays as it was)."""

    @extend_schema(
        operation_id="notes_add_addendum",
        request=AddendumCreateSerializer,
        responses={201: NoteSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, note_id: int) -> Response:
        body = _form(AddendumCreateSerializer, request)
        with clinical_errors():
            note = clinical_note_addendum(
                actor=_actor(request), note_id=note_id, text=body["text"], request=request._request
            )
        return _etag(Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED), note.version)


class _HistoryApi(APIView):
    kind = ""

    def get(self, request: Request, record_id: int) -> Response:
        with clinical_errors():
            entries = selectors.clinical_record_history(
                actor=_actor(request), kind=self.kind, record_id=record_id, request=request._request
            )
        return Response({"results": RecordHistoryEntrySerializer(entries, many=True).data})


def _history_api(kind: str, operation: str) -> type[APIView]:
    view = type(f"{kind}HistoryApi", (_HistoryApi,), {"kind": kind, "__doc__": f"Every version of a {kind}."})
    return extend_schema_view(
        get=extend_schema(operation_id=operation, responses={200: RecordHistorySerializer, **ERRORS})
    )(view)


EncounterHistoryApi = _history_api("Encounter", "encounters_history")
NoteHistoryApi = _history_api("ClinicalNote", "notes_history")


# --- Versioned chart lists ----------------------------------------------------------------------------------------


class _RecordListApi(APIView):
    spec: RecordKind[Any, Any]
    create_serializer: type[serializers.Serializer[Any]]
    output: type[serializers.Serializer[Any]]

    def get(self, request: Request, patient_id: int) -> Response:
        with clinical_errors():
            rows = selectors.clinical_record_list(
                actor=_actor(request),
                kind=self.spec.name,
                patient_id=patient_id,
                include_entered_in_error=_flag(request, "include_entered_in_error"),
                code=request.query_params.get("code", "")[:10],
                request=request._request,
            )
        return Response({"results": self.output(rows, many=True).data})

    def post(self, request: Request, patient_id: int) -> Response:
        values = _form(self.create_serializer, request)
        with clinical_errors():
            row = record_add(
                self.spec, actor=_actor(request), patient_id=patient_id, values=values, request=request._request
            )
        return _etag(Response(self.output(row).data, status=status.HTTP_201_CREATED), row.version)


class _RecordDetailApi(APIView):
    spec: RecordKind[Any, Any]
    update_serializer: type[serializers.Serializer[Any]]
    output: type[serializers.Serializer[Any]]

    def patch(self, request: Request, record_id: int) -> Response:
        expected = _expected_version(request)
        changes = _form(self.update_serializer, request)
        reason = changes.pop("reason")
        with clinical_errors():
            row = record_update(
                self.spec,
                actor=_actor(request),
                record_id=record_id,
                expected_version=expected,
                changes=changes,
                reason=reason,
                request=request._request,
            )
        return _etag(Response(self.output(row).data), row.version)


class _RecordEnteredInErrorApi(APIView):
    spec: RecordKind[Any, Any]
    output: type[serializers.Serializer[Any]]

    def post(self, request: Request, record_id: int) -> Response:
        expected = _expected_version(request)
        body = _form(EnteredInErrorSerializer, request)
        with clinical_errors():
            row = record_mark_entered_in_error(
                self.spec,
                actor=_actor(request),
                record_id=record_id,
                expected_version=expected,
                reason=body["reason"],
                request=request._request,
            )
        return _etag(Response(self.output(row).data), row.version)


def _record_apis(
    spec: RecordKind[Any, Any],
    prefix: str,
    output: type[serializers.Serializer[Any]],
    create: type[serializers.Serializer[Any]],
    update: type[serializers.Serializer[Any]],
) -> tuple[type[APIView], type[APIView], type[APIView], type[APIView]]:
    """List/create, update (If-Match), entered-in-error (If-Match) and history views for one kind."""
    attrs = {"spec": spec, "output": output}
    results = list_serializer(f"{spec.name}List", output)
    list_api = extend_schema_view(
        get=extend_schema(
            operation_id=f"{prefix}_list",
            parameters=[INCLUDE_EIE, *([OpenApiParameter("code", str)] if spec is OBSERVATION else [])],
            responses={200: results, **ERRORS},
        ),
        post=extend_schema(
            operation_id=f"{prefix}_create", request=create, responses={201: output, **CREATE_ERRORS}, parameters=[ETAG]
        ),
    )(type(f"{spec.name}ListApi", (_RecordListApi,), {**attrs, "create_serializer": create}))
    detail_api = extend_schema_view(
        patch=extend_schema(
            operation_id=f"{prefix}_update",
            request=update,
            parameters=[IF_MATCH, ETAG],
            responses={200: output, **WRITE_ERRORS},
        ),
    )(type(f"{spec.name}DetailApi", (_RecordDetailApi,), {**attrs, "update_serializer": update}))
    eie_api = extend_schema_view(
        post=extend_schema(
            operation_id=f"{prefix}_mark_entered_in_error",
            request=EnteredInErrorSerializer,
            parameters=[IF_MATCH, ETAG],
            responses={200: output, **WRITE_ERRORS},
        ),
    )(type(f"{spec.name}EnteredInErrorApi", (_RecordEnteredInErrorApi,), attrs))
    return list_api, detail_api, eie_api, _history_api(spec.name, f"{prefix}_history")


RECORD_APIS = {
    "conditions": _record_apis(
        CONDITION, "conditions", ConditionSerializer, ConditionCreateSerializer, ConditionUpdateSerializer
    ),
    "allergies": _record_apis(
        ALLERGY, "allergies", AllergySerializer, AllergyCreateSerializer, AllergyUpdateSerializer
    ),
    "medications": _record_apis(
        MEDICATION, "medications", MedicationSerializer, MedicationCreateSerializer, MedicationUpdateSerializer
    ),
    "observations": _record_apis(
        OBSERVATION, "observations", ObservationSerializer, ObservationCreateSerializer, ObservationUpdateSerializer
    ),
}
