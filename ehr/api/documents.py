"""Documents API: upload (multipart, streamed to storage with a size cap), list (metadata), download (access-checked,
audited, streamed with headers that stop browsers from rendering or caching it), entered-in-error, history.

Views parse, call one service or selector, and serialize. Storage, sniffing, access and auditing live in
``ehr.services.documents`` and ``ehr.selectors`` (docs/documents.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import FileResponse, HttpRequest, HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr import selectors
from ehr.api.clinical import ERRORS, INCLUDE_EIE, WRITE_ERRORS, _etag, _flag, _form, _history_api, clinical_errors
from ehr.api.patient_serializers import IDENTIFIER_PURPOSES, EnteredInErrorSerializer
from ehr.api.patients import ETAG, IF_MATCH, _actor, _expected_version
from ehr.errors import DocumentContentUnavailable, DocumentTooLarge, UnsupportedDocumentType
from ehr.models import DocumentType
from ehr.services.documents import IncomingDocument, document_mark_entered_in_error, document_upload

# Room for the multipart envelope and the small text fields around the file.
MULTIPART_ALLOWANCE = 64 * 1024


class DocumentSerializer(serializers.Serializer[object]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    encounter_id = serializers.IntegerField(allow_null=True)
    type = serializers.ChoiceField(choices=DocumentType.choices)
    title = serializers.CharField()
    content_type = serializers.CharField(help_text="Sniffed from the bytes, not taken from the client.")
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    original_filename = serializers.CharField()
    uploaded_by_id = serializers.IntegerField()
    uploaded_by_display_name = serializers.CharField()
    status = serializers.ChoiceField(choices=[("current", "Current"), ("entered-in-error", "Entered in error")])
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DocumentListSerializer(serializers.Serializer[object]):
    results = DocumentSerializer(many=True)


class DocumentUploadSerializer(serializers.Serializer[object]):
    file = serializers.FileField(required=False, help_text="PDF, PNG, JPEG or UTF-8 text; at most DOCUMENT_MAX_BYTES.")
    type = serializers.ChoiceField(choices=DocumentType.choices)
    title = serializers.CharField(max_length=200)
    encounter_id = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class DocumentContentQuerySerializer(serializers.Serializer[object]):
    purpose = serializers.ChoiceField(
        choices=IDENTIFIER_PURPOSES,
        required=False,
        help_text="Why the document is opened (audited). Default: treatment, or patient_request for the patient.",
    )


UPLOAD_ERRORS = {**ERRORS, 413: ApiErrorSerializer, 415: ApiErrorSerializer}


@contextmanager
def document_errors() -> Iterator[None]:
    with clinical_errors():
        try:
            yield
        except DocumentTooLarge as exc:
            raise _too_large(exc.max_bytes) from None
        except UnsupportedDocumentType as exc:
            raise ApiError("unsupported_file_type", str(exc), status_code=415) from None
        except DocumentContentUnavailable:
            raise ApiError(
                "document_content_unavailable",
                "The document's file cannot be served right now; operators have been told to restore it.",
                status_code=500,
            ) from None


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        "file_too_large",
        f"The file is larger than {max_bytes // (1024 * 1024) or max_bytes} "
        f"{'MiB' if max_bytes >= 1024 * 1024 else 'bytes'}.",
        status_code=413,
    )


class DocumentUploadHandler(FileUploadHandler):
    """Streams the ``file`` part straight into an ``IncomingDocument`` (hashing, counting and sniffing as it goes)
    and stops the upload the moment it passes the limit; any other file part is skipped."""

    chunk_size = 64 * 1024

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.incoming: IncomingDocument | None = None
        self.too_large = False

    def new_file(self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any) -> None:
        if field_name != "file" or self.incoming is not None:
            raise SkipFile()
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        self.incoming = IncomingDocument(filename=file_name, declared_type=content_type, max_bytes=self.max_bytes)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.incoming is None:
            return raw_data
        try:
            self.incoming.write(raw_data)
        except DocumentTooLarge:
            self.too_large = True
            raise StopUpload(connection_reset=True) from None
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.incoming is None:
            return None
        # A stand-in so the parsed form shows a file was sent; the bytes stay with ``self.incoming``.
        return UploadedFile(name=self.incoming.filename, content_type=self.incoming.declared_type, size=file_size)


class PatientDocumentListApi(APIView):
    """A patient's documents (metadata only), and uploading one (multipart: ``file``, ``type``, ``title``,
    ``encounter_id``?)."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="documents_list", parameters=[INCLUDE_EIE], responses={200: DocumentListSerializer, **ERRORS}
    )
    def get(self, request: Request, patient_id: int) -> Response:
        with document_errors():
            rows = selectors.document_list(
                actor=_actor(request),
                patient_id=patient_id,
                include_entered_in_error=_flag(request, "include_entered_in_error"),
                request=request._request,
            )
        return Response({"results": DocumentSerializer(rows, many=True).data})

    @extend_schema(
        operation_id="documents_upload",
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: DocumentSerializer, **UPLOAD_ERRORS},
        parameters=[ETAG],
    )
    def post(self, request: Request, patient_id: int) -> Response:
        handler = self._handler
        assert handler is not None  # installed by initial() for every POST
        form = DocumentUploadSerializer(data=request.data)
        if handler.too_large:
            raise _too_large(handler.max_bytes)
        form.is_valid(raise_exception=True)
        if handler.incoming is None:
            raise serializers.ValidationError({"file": ["Attach the file."]})
        with document_errors():
            document = document_upload(
                actor=_actor(request),
                patient_id=patient_id,
                incoming=handler.incoming,
                type=form.validated_data["type"],
                title=form.validated_data["title"],
                encounter_id=form.validated_data["encounter_id"],
                request=request._request,
            )
        return _etag(Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED), document.version)

    _handler: DocumentUploadHandler | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: its CSRF check reads the form, which is when the body is parsed, so the streaming
        # handler must be in place by then. A body that declares itself too large is refused before any parsing.
        if request.method == "POST":
            max_bytes = int(settings.DOCUMENT_MAX_BYTES)
            try:
                declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared_length = 0
            if declared_length > max_bytes + MULTIPART_ALLOWANCE:
                raise _too_large(max_bytes)
            self._handler = DocumentUploadHandler(request._request, max_bytes)
            request._request.upload_handlers = [self._handler]
        super().initial(request, *args, **kwargs)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # Whatever happened (401, 403, 400, 415, a crash), the upload's temp file does not outlive the request.
            if self._handler is not None and self._handler.incoming is not None:
                self._handler.incoming.discard()


class DocumentContentApi(APIView):
    """The document's bytes, as an attachment, with the sniffed content type; audited as a read with its purpose."""

    @extend_schema(
        operation_id="documents_content",
        parameters=[DocumentContentQuerySerializer],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The file (attachment)."),
            **ERRORS,
        },
    )
    def get(self, request: Request, document_id: int) -> FileResponse:
        query = DocumentContentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        with document_errors():
            content = selectors.document_content_open(
                actor=_actor(request),
                document_id=document_id,
                purpose=query.validated_data.get("purpose", ""),
                request=request._request,
            )
        document = content.document
        response = FileResponse(content.file, content_type=document.content_type)
        response["Content-Length"] = str(document.size_bytes)
        response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(document.original_filename, safe='')}"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        response["Content-Security-Policy"] = "sandbox"
        response["Cross-Origin-Resource-Policy"] = "same-origin"
        return response


class DocumentEnteredInErrorApi(APIView):
    """Mark a document uploaded by mistake (If-Match, reason). Nothing is deleted; the default list hides it."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="documents_mark_entered_in_error",
        request=EnteredInErrorSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={200: DocumentSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, document_id: int) -> Response:
        expected = _expected_version(request)
        body = _form(EnteredInErrorSerializer, request)
        with document_errors():
            document = document_mark_entered_in_error(
                actor=_actor(request),
                document_id=document_id,
                expected_version=expected,
                reason=body["reason"],
                request=request._request,
            )
        return _etag(Response(DocumentSerializer(document).data), document.version)


DocumentHistoryApi = _history_api("DocumentReference", "documents_history")
