"""The header plan of a template: read once per reference, however often it is loaded."""

from __future__ import annotations

import numpy as np
import pytesseract
import pytest

from ocr.header import plan_header
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
