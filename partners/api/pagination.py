"""Cursor pagination for every list: stable under inserts and fast at any depth (keyset, no OFFSET)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class PartnerCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"
