"""Shared, session-scoped fixtures: templates are rendered and loaded once.

Loading runs Tesseract on the reference header, so it is worth sharing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ocr.template import BallotTemplate, LoadedTemplate, load_template
from seeds.ballot import BY2020_DESIGN, REFERENDUM_DESIGN, render_reference, write_template


@pytest.fixture(scope="session")
def by_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("by2020")
    write_template(BY2020_DESIGN, folder)
    return folder


@pytest.fixture(scope="session")
def by_template(by_dir: Path) -> LoadedTemplate:
    return load_template(by_dir)


@pytest.fixture(scope="session")
def referendum_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("referendum")
    write_template(REFERENDUM_DESIGN, folder)
    return folder


@pytest.fixture(scope="session")
def referendum_template(referendum_dir: Path) -> LoadedTemplate:
    return load_template(referendum_dir)


@pytest.fixture(scope="session")
def referendum_reference() -> tuple[Image.Image, BallotTemplate]:
    return render_reference(REFERENDUM_DESIGN)
