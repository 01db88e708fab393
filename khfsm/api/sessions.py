"""Sessions and their evidence (filled in next)."""

from __future__ import annotations

from fastapi import APIRouter

from khfsm.api import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["sessions"])
