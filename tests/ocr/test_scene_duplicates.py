"""The scene descriptor (ocr.scene): re-used copies of a photo are one photo,
look-alike ballots of two voters are not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocr.ink import hamming, pose_distance
from ocr.reader import (
    NEAR_DUPLICATE_BITS,
    NEAR_DUPLICATE_POSE_DEG,
    BallotReading,
    read_ballot,
    same_photo,
)
from ocr.scene import (
    KEY_BITS,
    KEY_LENGTH,
    PAPER_KEY_BITS,
    PAPER_LENGTH,
    PAPER_SAME,
    SceneMatch,
    compare,
    decode,
    encode,
    paper_correlation,
    paper_key_of,
    same_scene,
    same_scenes,
    scene_hash,
    scene_key,
    scene_key_of,
)
from ocr.template import LoadedTemplate
from seeds.ballot import BY2020_DESIGN, render_reference
from seeds.photos import (
    PhotoConditions,
    mark_ballot,
    paper_texture,
    phone_photo,
    random_conditions,
)


def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _image(photo: bytes) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.exif_transpose(Image.open(io.BytesIO(photo))).convert("RGB")


def _cropped(photo: bytes) -> bytes:
    img = _image(photo)
    w, h = img.size
    return _jpeg(img.crop((int(0.06 * w), int(0.04 * h), int(0.95 * w), int(0.93 * h))))


def _brightened(photo: bytes) -> bytes:
    arr = np.asarray(_image(photo), np.float32) * 1.2 + 15
    return _jpeg(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))


def _screenshot(photo: bytes) -> bytes:
    """Scaled into a phone screen between a status bar and a navigation bar, PNG."""
    img = _image(photo)
    scale = 1000 / img.width
    shot = img.resize((1000, round(img.height * scale)))
    canvas = Image.new("RGB", (1080, shot.height + 260), (0, 0, 0))
    canvas.paste(shot, (40, 130))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 1080, 60), fill=(30, 30, 30))
    draw.text((20, 20), "12:41  4G 87%", fill=(255, 255, 255))
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


def _from_screen(photo: bytes, rng: np.random.Generator) -> bytes:
    """Shown on a screen (pixel grid, gamma) and photographed again."""
    img = _image(photo)
    shown = np.asarray(img.resize((img.width * 4 // 5, img.height * 4 // 5)), np.float32) / 255
    shown = shown**1.2
    shown[::3] *= 0.88
    screen = Image.fromarray(np.clip(shown * 230, 0, 255).astype(np.uint8))
    cond = PhotoConditions(
        rotation_deg=3.0,
        perspective=0.03,
        blur_sigma=0.8,
        light_gradient=0.15,
        shadow=False,
        jpeg_quality=85,
        long_side=1800,
        ballot_fraction=0.93,
    )
    return phone_photo(screen, rng, cond)


@pytest.fixture(scope="module")
def reference() -> tuple[Image.Image, object]:
    return render_reference(BY2020_DESIGN)


def _honest(reference: tuple[Image.Image, object], seed: int, style: str = "cross") -> bytes:
    image, template = reference
    rng = np.random.default_rng([seed, 5])
    option = template.options[0].id  # type: ignore[attr-defined]
    paper = mark_ballot(image, template, [option], rng, style, False)  # type: ignore[arg-type]
    return phone_photo(paper, rng, random_conditions(rng))


def _read(template: LoadedTemplate, photo: bytes) -> BallotReading:
    reading = read_ballot(template, photo)
    assert reading.fingerprint is not None and reading.scene is not None, reading
    return reading


def test_re_used_copies_of_a_photo_are_found_and_confirmed(
    by_template: LoadedTemplate, reference: tuple[Image.Image, object]
) -> None:
    photo = _honest(reference, 1, "tick")
    base = _read(by_template, photo)
    rng = np.random.default_rng(9)
    for copy in (
        _jpeg(_image(photo), 60),
        _jpeg(_image(photo).resize((900, 1200))),
        _cropped(photo),
        _brightened(photo),
        _screenshot(photo),
        _from_screen(photo, rng),
    ):
        other = _read(by_template, copy)
        assert other.fingerprint is not None and base.fingerprint is not None
        assert hamming(base.fingerprint, other.fingerprint) <= NEAR_DUPLICATE_BITS
        key, other_key = scene_key_of(base.scene), scene_key_of(other.scene)
        assert key is not None and other_key is not None
        assert hamming(key, other_key) <= KEY_BITS
        assert same_photo(base, other)


def test_two_voters_look_alike_ballots_are_two_photos(
    by_template: LoadedTemplate, reference: tuple[Image.Image, object]
) -> None:
    """The same box, the same mark style, no stamp or signature: still two papers."""
    for style in ("cross", "fill", "dot"):
        first = _read(by_template, _honest(reference, 10, style))
        second = _read(by_template, _honest(reference, 11, style))
        assert first.scene is not None and second.scene is not None
        assert not same_scenes(first.scene, second.scene)
        assert not same_photo(first, second)


def test_descriptor_text_round_trips_and_rejects_anything_else() -> None:
    arrays = {
        "m3": np.arange(64, dtype=np.uint8).reshape(8, 8) % 16,
        "light": np.full((4, 3), 200, np.uint8),
        "ring": np.zeros((10, 12), np.uint8),
    }
    back = decode(encode(arrays))
    assert sorted(back) == sorted(arrays)
    for key, value in arrays.items():
        assert np.array_equal(back[key], value)
    for bad in ("", "not base64!", encode(arrays)[:-8], "AAAA"):
        with pytest.raises(ValueError):
            decode(bad)
        assert not same_scenes(bad, encode(arrays))


def test_index_key_is_16_hex_digits_from_the_strokes_only() -> None:
    rng = np.random.default_rng(3)
    stroke = (rng.random((30, 30)) * 16).astype(np.uint8)
    arrays = {"m0": stroke, "light": np.full((4, 3), 200, np.uint8)}
    key = scene_hash(arrays)
    assert len(key) == 16 and int(key, 16) >= 0
    assert scene_hash({**arrays, "light": np.full((4, 3), 90, np.uint8)}) == key
    assert scene_hash({"m1": stroke}) != key  # another box: other directions
    assert scene_hash({}) == "0" * 16


def test_second_key_is_256_bits_from_the_strokes_detail_on_other_directions() -> None:
    rng = np.random.default_rng(3)
    stroke = (rng.random((30, 30)) * 16).astype(np.uint8)
    arrays = {"m0": stroke, "light": np.full((4, 3), 200, np.uint8)}
    key = scene_key(arrays)
    assert len(key) == KEY_LENGTH // 4 and not key.startswith(scene_hash(arrays))
    assert scene_key({**arrays, "light": np.full((4, 3), 90, np.uint8)}) == key
    assert scene_key({"m1": stroke}) != key
    assert scene_key_of(encode(arrays)) == key
    # No descriptor, a malformed one or one without a marked box: no second key.
    assert scene_key_of(None) is None
    assert scene_key_of("not base64!") is None
    assert scene_key_of(encode({"light": np.full((4, 3), 200, np.uint8)})) is None


def test_decision_needs_every_shown_kind_of_evidence() -> None:
    # Strokes alike and a table that agrees without deciding: only a copy keeps
    # the page's pose too.
    assert not same_scene(SceneMatch(0.95, 0.7, None))
    assert same_scene(SceneMatch(0.95, 0.7, None), same_pose=True)
    assert not same_scene(SceneMatch(0.95, 0.7, -0.2), same_pose=True)  # opposed light
    # Strokes alike and nothing else to compare: the pose alone does not decide.
    assert not same_scene(SceneMatch(0.95, None, None), same_pose=True)
    assert not same_scene(SceneMatch(0.95, None, 0.99), same_pose=True)
    # Light alike alone is no evidence: two honest photos' often agree closely.
    assert not same_scene(SceneMatch(0.95, None, 0.99))
    # The table or the stamps agreeing closely decide, even for softer strokes.
    assert same_scene(SceneMatch(0.95, 0.9, 0.8))
    assert same_scene(SceneMatch(0.7, None, None, 0.9))
    assert not same_scene(SceneMatch(0.7, 0.7, None))
    assert not same_scene(SceneMatch(None, 0.99, 0.99))  # other boxes marked
    assert not same_scene(SceneMatch(0.5, 0.99, 0.99))  # another hand's stroke
    assert not same_scene(SceneMatch(0.95, 0.1, 0.99), same_pose=True)  # another table
    assert not same_scene(SceneMatch(0.95, None, 0.99, 0.2), same_pose=True)  # another stamp
    blank = {"m0": np.zeros((20, 20), np.uint8)}
    assert compare(blank, {"m1": np.zeros((20, 20), np.uint8)}).marks is None


def test_the_paper_decides_when_both_photos_show_it() -> None:
    # The same sheet: a copy, even with nothing else to compare and softer strokes.
    assert same_scene(SceneMatch(0.7, None, None, None, PAPER_SAME + 0.05))
    # Two sheets: never one photo, whatever else looks alike (two voters' filled
    # boxes photographed on one table in one light).
    assert not same_scene(SceneMatch(0.99, 0.99, 0.99, 0.99, 0.05), same_pose=True)
    # The same sheet still needs the same stroke in the box.
    assert not same_scene(SceneMatch(0.3, None, None, None, 0.9))


def test_paper_sketches_of_two_sheets_are_uncorrelated_and_of_a_copy_alike(
    by_template: LoadedTemplate, reference: tuple[Image.Image, object]
) -> None:
    """One sheet's texture survives re-saving and re-photographing from a screen;
    two sheets' sketches correlate like independent noise (sd 1/sqrt(512))."""
    photos = [_honest(reference, seed, "fill") for seed in range(20, 26)]
    readings = [_read(by_template, p) for p in photos]
    sketches = [decode(r.scene or "")["paper"] for r in readings]
    assert all(s.shape == (PAPER_LENGTH,) for s in sketches)
    honest = [
        paper_correlation(sketches[i], sketches[j])
        for i in range(len(sketches))
        for j in range(i + 1, len(sketches))
    ]
    assert max(abs(r) for r in honest) < PAPER_SAME
    keys = [paper_key_of(r.scene) for r in readings]
    assert all(k is not None and len(k) == PAPER_LENGTH // 4 for k in keys)
    copies = [_jpeg(_image(photos[0]), 60), _from_screen(photos[0], np.random.default_rng(3))]
    for copy in copies:
        other = _read(by_template, copy)
        assert paper_correlation(sketches[0], decode(other.scene or "")["paper"]) >= PAPER_SAME
        key, other_key = paper_key_of(readings[0].scene), paper_key_of(other.scene)
        assert key is not None and other_key is not None
        assert hamming(key, other_key) <= PAPER_KEY_BITS


def test_each_sheet_has_a_texture_of_its_own_and_none_at_zero_mottle(
    reference: tuple[Image.Image, object],
) -> None:
    image, _ = reference
    flat = paper_texture(image, np.random.default_rng(1), mottle=0.0)
    assert np.array_equal(np.asarray(flat), np.asarray(image.convert("RGB")))
    textured = np.asarray(paper_texture(image, np.random.default_rng(1)), np.float32)
    again = np.asarray(paper_texture(image, np.random.default_rng(1)), np.float32)
    assert np.array_equal(textured, again)  # one seed, one sheet
    other = np.asarray(paper_texture(image, np.random.default_rng(2)), np.float32)
    assert not np.array_equal(textured, other)


def test_paper_texture_leaves_the_rest_of_the_random_stream_alone(
    reference: tuple[Image.Image, object],
) -> None:
    image, _ = reference
    rng, twin = np.random.default_rng([4, 5]), np.random.default_rng([4, 5])
    paper_texture(image, rng)
    assert rng.random() == twin.random()


def test_one_paper_photographed_twice_is_one_ballot(
    by_template: LoadedTemplate, reference: tuple[Image.Image, object]
) -> None:
    """Two photos of one sheet (another angle, light, table): the paper and the
    stroke are the same, so the second is the first ballot again, sent twice."""
    image, template = reference
    rng = np.random.default_rng([31, 5])
    option = template.options[0].id  # type: ignore[attr-defined]
    sheet = mark_ballot(image, template, [option], rng, "cross", False)  # type: ignore[arg-type]
    first = _read(by_template, phone_photo(sheet, rng, random_conditions(rng)))
    second = _read(by_template, phone_photo(sheet, rng, random_conditions(rng)))
    assert first.pose != second.pose
    assert same_scenes(first.scene or "", second.scene or "")
    assert same_photo(first, second)  # the index keys too


def test_strokes_and_pose_alone_never_make_one_photo(
    by_template: LoadedTemplate, reference: tuple[Image.Image, object]
) -> None:
    """A photo whose paper clipped to white, unstamped, on a table too plain to
    compare: against its own re-saved copy nothing is left but the strokes and
    the pose, which two honest voters' look-alike photos also share now and
    then, so it is not taken for one photo (the price: such a copy is missed)."""
    photo = _honest(reference, 42, "fill")
    img = np.asarray(_image(photo), np.float32) * 1.4 + 30  # paper past white
    clipped = _jpeg(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), 90)
    first = _read(by_template, clipped)
    again = _read(by_template, _jpeg(_image(clipped), 80))
    a, b = decode(first.scene or ""), decode(again.scene or "")
    assert "paper" not in a and "paper" not in b  # no sketch: nothing of the sheet left
    match = compare(a, b)
    assert match.paper is None and match.ring is None and match.page is None
    assert match.marks is not None and match.marks >= 0.85  # the strokes alike
    assert first.pose is not None and again.pose is not None
    assert pose_distance(first.pose, again.pose) <= NEAR_DUPLICATE_POSE_DEG
    assert not same_scenes(first.scene or "", again.scene or "", same_pose=True)
    assert not same_photo(first, again)
