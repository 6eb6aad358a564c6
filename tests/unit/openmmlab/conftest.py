"""Builds in these tests go through mmseg's / mmdet's registries directly; pin the matching
default scope, since an earlier test's Runner may have left another one current."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def openmmlab_scope(request):
    from mmengine.registry import DefaultScope

    scope = "mmdet" if "detection" in request.module.__name__ else "mmseg"
    with DefaultScope.overwrite_default_scope(scope):
        yield
