"""Re-used copies of a photo, as someone re-posting it would make them: re-saved,
rescaled, cropped, brightened, screenshotted, or shown on a screen and photographed
again. Deterministic given the generator. Used by the benchmarks and tests of
near-duplicate ballots and of copied protocol photos."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from seeds.photos import PhotoConditions, phone_photo

# Every transform; the first five keep the original's pixels up to a similarity and
# a change of grey levels, the last is a new photo of the original on a screen.
TRANSFORMS = ("resave", "rescale", "crop", "brightness", "screenshot", "rephoto_screen")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _screenshot(img: Image.Image, rng: np.random.Generator) -> bytes:
    w, h = img.size
    sw, sh = (1080, 2340) if h >= w else (2340, 1080)
    s = min(sw / w, (sh - 300) / h) * float(rng.uniform(0.6, 1.0))
    shot = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    dark = rng.random() < 0.5
    canvas = Image.new(
        "RGB", (max(shot.width, 400), shot.height + 260), (0, 0, 0) if dark else (245, 245, 245)
    )
    canvas.paste(shot, ((canvas.width - shot.width) // 2, 130))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas.width, 60), fill=(30, 30, 30))
    draw.text((20, 20), "12:41   4G  87%", fill=(255, 255, 255))
    draw.rectangle((0, canvas.height - 80, canvas.width, canvas.height), fill=(20, 20, 20))
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


def _rephoto_screen(img: Image.Image, rng: np.random.Generator) -> bytes:
    """The photo shown on a screen (pixel grid, gamma, dimmer) and photographed."""
    w, h = img.size
    shown = np.asarray(img.resize((round(w * 0.8), round(h * 0.8))), np.float32) / 255.0
    shown = shown ** float(rng.uniform(0.75, 1.3))
    shown[::3] *= 0.88  # the pixel grid: moiré once resampled
    shown[:, ::3] *= 0.92
    screen = np.clip(shown * 255.0 * float(rng.uniform(0.8, 1.0)), 0, 255).astype(np.uint8)
    cond = PhotoConditions(
        rotation_deg=float(rng.uniform(-6, 6)),
        perspective=float(rng.uniform(0.0, 0.04)),
        blur_sigma=float(rng.uniform(0.4, 1.3)),
        light_gradient=float(rng.uniform(0.0, 0.3)),
        shadow=False,
        jpeg_quality=int(rng.integers(70, 93)),
        long_side=int(rng.integers(1400, 2001)),
        ballot_fraction=float(rng.uniform(0.85, 0.97)),
    )
    return phone_photo(Image.fromarray(screen), rng, cond)


def reuse(data: bytes, name: str, rng: np.random.Generator) -> bytes:
    """A re-used copy of a photo (one of TRANSFORMS). Pure given ``rng``."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    w, h = img.size
    if name == "resave":
        return _jpeg(img, int(rng.integers(50, 96)))
    if name == "rescale":
        f = float(rng.uniform(0.5, 1.5))
        return _jpeg(img.resize((round(w * f), round(h * f)), Image.Resampling.BILINEAR), 90)
    if name == "crop":
        c = rng.uniform(0.0, 0.1, 4)
        box = (int(c[0] * w), int(c[1] * h), int(w * (1 - c[2])), int(h * (1 - c[3])))
        return _jpeg(img.crop(box), 90)
    if name == "brightness":
        gain, offset = float(rng.uniform(0.7, 1.3)), float(rng.uniform(-30, 30))
        arr = np.clip(np.asarray(img, np.float32) * gain + offset, 0, 255).astype(np.uint8)
        return _jpeg(Image.fromarray(arr), 90)
    if name == "screenshot":
        return _screenshot(img, rng)
    if name == "rephoto_screen":
        return _rephoto_screen(img, rng)
    raise ValueError(name)
