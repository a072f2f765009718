"""Shared pytest configuration.

``../shared`` (third-party models and the TFLite Micro tree) is part of the test set: CI always
has it, so a missing one stops the session with one line instead of quietly skipping every
third-party-model check. Without it (e.g. a fork without the models), set ``EDGEQ_NO_SHARED=1``
to run the rest; those tests then skip. Markers that need real hardware skip cleanly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_models_dir() -> Path | None:
    """Third-party models (../shared/models beside the checkout, or EDGEQ_SHARED_MODELS)."""
    env = os.environ.get("EDGEQ_SHARED_MODELS")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "models")
    for c in candidates:
        if (c / "tflm").is_dir():
            return c
    return None


NO_SHARED_ENV = "EDGEQ_NO_SHARED"


def pytest_sessionstart(session: pytest.Session) -> None:
    if shared_models_dir() is None and not os.environ.get(NO_SHARED_ENV):
        pytest.exit(f"edgeq: {REPO_ROOT.parent / 'shared' / 'models'} not found: put ../shared "
                    f"beside the checkout (or set EDGEQ_SHARED_MODELS), or set {NO_SHARED_ENV}=1 "
                    "to skip the third-party-model tests", returncode=4)


@pytest.fixture(scope="session")
def shared_models() -> Path:
    d = shared_models_dir()
    if d is None:
        pytest.skip("third-party models not found: put ../shared/models beside the checkout")
    return d


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_board = bool(os.environ.get("EDGEQ_BOARD") or os.environ.get("EDGEQ_PORT"))
    has_tflm = bool(os.environ.get("EDGEQ_TFLM_DIR"))
    skip_hw = pytest.mark.skip(reason="needs a real board: set EDGEQ_BOARD and EDGEQ_PORT")
    skip_tflm = pytest.mark.skip(reason="needs a TFLite Micro source tree: set EDGEQ_TFLM_DIR")
    for item in items:
        if "hardware" in item.keywords and not has_board:
            item.add_marker(skip_hw)
        if "tflm_source" in item.keywords and not has_tflm:
            item.add_marker(skip_tflm)
