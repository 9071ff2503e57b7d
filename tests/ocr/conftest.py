"""Shared, session-scoped fixtures: templates are rendered and loaded once.

Loading runs Tesseract on the reference header, so it is worth sharing. Also the
clear photo conditions the protocol tests photograph their forms under.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ocr.protocol_template import ProtocolTemplate, load_protocol_template
from ocr.template import BallotTemplate, LoadedTemplate, load_template
from seeds.ballot import BY2020_DESIGN, REFERENDUM_DESIGN, render_reference, write_template
from seeds.photos import PhotoConditions
from seeds.protocol import write_election_folder

# A clear phone photo of a protocol: a little turned and tilted, sharp, even light.
CLEAR_PROTOCOL = PhotoConditions(
    rotation_deg=3.0,
    perspective=0.02,
    blur_sigma=0.4,
    light_gradient=0.1,
    shadow=False,
    jpeg_quality=90,
    long_side=2000,
    ballot_fraction=0.88,
)


@pytest.fixture(scope="session")
def ru_protocol(tmp_path_factory: pytest.TempPathFactory) -> ProtocolTemplate:
    folder = tmp_path_factory.mktemp("protocol") / "ru-2018"
    return load_protocol_template(write_election_folder("ru-2018", folder))


@pytest.fixture(scope="session")
def by_protocol(tmp_path_factory: pytest.TempPathFactory) -> ProtocolTemplate:
    folder = tmp_path_factory.mktemp("protocol") / "by-2020"
    return load_protocol_template(write_election_folder("by-2020", folder))


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
