"""The header plan of a template (read once per reference, however often it is
loaded) and the Tesseract calls that check the header of each photo."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pytesseract
import pytest

from ocr import header
from ocr.align import warp_region
from ocr.header import (
    MIN_RATIO,
    OCR_CONFIG,
    OCR_TIMEOUT_S,
    keyword_crops,
    keyword_scores,
    plan_header,
    run_tesseract,
)
from ocr.template import LoadedTemplate


def test_a_template_loaded_again_reuses_its_header_plan_without_tesseract(
    by_template: LoadedTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = by_template.template
    first_top = min(o.box[1] for o in template.options)
    args = (first_top, template.header_keywords, template.ocr_languages)
    plan = plan_header(by_template.reference, *args)

    def no_tesseract(*_: object, **__: object) -> None:
        raise AssertionError("Tesseract was run again for a header it has read")

    with monkeypatch.context() as patched:
        patched.setattr(pytesseract, "image_to_data", no_tesseract)
        again = plan_header(by_template.reference.copy(), *args)  # equal pixels, new array
        assert again is plan
        # Other pixels are another reference: read afresh (here: refused by the stub).
        other = by_template.reference.copy()
        other[0, 0] = np.uint8(255 - int(other[0, 0]))
        with pytest.raises(AssertionError, match="run again"):
            plan_header(other, *args)


def _header_images(template: LoadedTemplate) -> list[np.ndarray]:
    """What a photo's header check gives Tesseract: the stacked keyword crops (here
    of the reference itself, then blurred and noisy) and the whole header."""
    plan = template.header
    crops = keyword_crops(plan, template.reference, np.eye(3))
    noise = np.random.default_rng(5).normal(0.0, 12.0, crops.shape)
    soft = cv2.GaussianBlur(crops, (0, 0), 1.5).astype(np.float64) + noise
    whole = warp_region(template.reference, np.eye(3), plan.region, plan.region_scale)
    return [crops, np.clip(soft, 0, 255).astype(np.uint8), whole]


def test_the_header_is_read_in_process_as_the_tesseract_program_reads_it(
    by_template: LoadedTemplate,
) -> None:
    languages = by_template.template.ocr_languages
    images = _header_images(by_template)
    for image in images:
        program = pytesseract.image_to_string(
            image, lang=languages, config=OCR_CONFIG, timeout=OCR_TIMEOUT_S
        )
        assert run_tesseract(image, languages) == program
    # In process: the models stay loaded, no program is started per photo.
    engine = header._engine(languages)
    assert engine is not None and header._engine(languages) is engine
    scores = keyword_scores(
        run_tesseract(images[0], languages), by_template.template.header_keywords
    )
    assert min(scores.values()) >= MIN_RATIO


def _read_in_child(image: np.ndarray, languages: str) -> tuple[int, str]:
    return os.getpid(), run_tesseract(image, languages)


def test_a_forked_reader_loads_its_own_tesseract_and_reads_the_same(
    by_template: LoadedTemplate,
) -> None:
    languages = by_template.template.ocr_languages
    image = _header_images(by_template)[0]
    here = run_tesseract(image, languages)  # this process's engine exists before the fork
    with ProcessPoolExecutor(max_workers=1) as pool:
        pid, there = pool.submit(_read_in_child, image, languages).result()
    assert pid != os.getpid() and there == here


def test_unknown_tesseract_languages_raise_runtime_error(by_template: LoadedTemplate) -> None:
    # The reader turns RuntimeError into an `ocr_failed` verdict.
    with pytest.raises(RuntimeError, match="languages"):
        run_tesseract(_header_images(by_template)[0], "xx_no_such_language")
