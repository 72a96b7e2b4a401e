"""Admin console: list users, deactivate and re-activate accounts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError
from ehr import selectors, services
from ehr.api.permissions import IsAdminRole
from ehr.api.serializers import UserListQuerySerializer, UserRowSerializer
from ehr.errors import CannotDeactivateSelf, UserNotFound


class UserListApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(parameters=[UserListQuerySerializer], responses=UserRowSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = UserListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.user_list(search=query.validated_data["search"]), request, self)
        return paginator.get_paginated_response(UserRowSerializer(page, many=True).data)

    # drf-spectacular learns pagination from this attribute for the schema.
    pagination_class = PageNumberPagination


class UserDeactivateApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses=UserRowSerializer)
    def post(self, request: Request, user_id: int) -> Response:
        try:
            user = services.user_deactivate(user_id=user_id, actor=request.user)  # type: ignore[arg-type]
        except CannotDeactivateSelf:
            raise ApiError("cannot_deactivate_self", "You cannot deactivate your own account.") from None
        except UserNotFound:
            raise ApiError("not_found", "No such user.", status_code=404) from None
        return Response(UserRowSerializer(user).data)


class UserActivateApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses=UserRowSerializer)
    def post(self, request: Request, user_id: int) -> Response:
        try:
            user = services.user_activate(user_id=user_id, actor=request.user)  # type: ignore[arg-type]
        except UserNotFound:
            raise ApiError("not_found", "No such user.", status_code=404) from None
        return Response(UserRowSerializer(user).data)
