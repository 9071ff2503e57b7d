"""Reading the ballot header with Tesseract to confirm which election it is.

A read makes a single Tesseract call on a small image: the neighbourhoods of
the header keywords, located once on the reference when the template is loaded,
cut from the aligned photo and stacked. The whole header is read only as a
second chance. Tesseract runs inside the process through its C API, its models
loaded once per process and language set (``run_tesseract``); where the library
cannot be loaded, the ``tesseract`` program is run per call.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import difflib
import hashlib
import os
import re
import threading
from dataclasses import dataclass

import cv2
import numpy as np
import pytesseract

from ocr.align import warp_region

TEXT_HEIGHT = 34  # pixels Tesseract is given per line of text (it likes 30-40)
MIN_RATIO = 0.8  # difflib similarity needed for an OCR token to count as the keyword
OCR_PSM = 6  # page segmentation: one uniform block of text
OCR_CONFIG = f"--psm {OCR_PSM}"
CROP_GAP = 12  # white pixels between stacked crops
OCR_TIMEOUT_S = 20
MAX_FALLBACK_WIDTH = 1600
BLUR_SIGMAS = (0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0)  # crop pixels (text ~TEXT_HEIGHT)
BLUR_SEARCH = 4  # pixels of residual shift searched when estimating blur
FOUND_ON_REFERENCE = 0.95  # on the clean reference a keyword should read (almost) exactly
EDGE_MIN_RANGE = 40  # grey levels of local contrast for a pixel to count as an edge

Rect = tuple[int, int, int, int]
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class KeywordSpot:
    keyword: str
    rect: Rect  # reference pixels, the keyword plus a margin for misalignment
    scale: float  # sampling scale that brings the word to TEXT_HEIGHT


@dataclass(frozen=True)
class HeaderPlan:
    region: Rect  # the whole header (reference pixels): above the first option box
    region_scale: float
    spots: list[KeywordSpot]
    reference_blurs: list[np.ndarray]  # the reference keyword crops at each BLUR_SIGMAS


def run_tesseract(image: np.ndarray, languages: str) -> str:
    """Tesseract's text of a grayscale (or RGB) image, page segmentation OCR_PSM.

    In process when libtesseract loads, the models loaded once per process and
    language set (~12 MB each): starting the ``tesseract`` program and loading
    its models cost most of a ballot's header check, which took 57 ms of CPU a
    photo that way and 22 ms in process (60 held-out 2000-px photos of
    seeds/evalset, one core). The engine is the program's, with its settings:
    the text of those photos' 54 header images was identical, and so was every
    reading of 1,350 evaluation photos (held-out seed 0, tuned seed 1).
    Raises RuntimeError when the models do not load or OCR_TIMEOUT_S passes.
    """
    # One OCR thread: readers run one per core, and OpenMP threads only fight.
    # (Read when Tesseract's OpenMP runtime is loaded, so set before _engine.)
    os.environ["OMP_THREAD_LIMIT"] = "1"
    engine = _engine(languages)
    if engine is not None:
        return engine.read(image)
    text: str = pytesseract.image_to_string(
        image, lang=languages, config=OCR_CONFIG, timeout=OCR_TIMEOUT_S
    )
    return text


class _TessLib:
    """The few functions of Tesseract's C API (capi.h) the header check uses."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        handle, text = ctypes.c_void_p, ctypes.POINTER(ctypes.c_char)
        lib.TessBaseAPICreate.restype = handle
        lib.TessBaseAPICreate.argtypes = []
        lib.TessBaseAPIInit3.restype = ctypes.c_int
        lib.TessBaseAPIInit3.argtypes = [handle, ctypes.c_char_p, ctypes.c_char_p]
        lib.TessBaseAPISetPageSegMode.restype = None
        lib.TessBaseAPISetPageSegMode.argtypes = [handle, ctypes.c_int]
        lib.TessBaseAPISetImage.restype = None
        lib.TessBaseAPISetImage.argtypes = [handle, ctypes.c_void_p] + [ctypes.c_int] * 4
        lib.TessBaseAPISetVariable.restype = ctypes.c_int
        lib.TessBaseAPISetVariable.argtypes = [handle, ctypes.c_char_p, ctypes.c_char_p]
        lib.TessBaseAPIRecognize.restype = ctypes.c_int
        lib.TessBaseAPIRecognize.argtypes = [handle, handle]
        lib.TessBaseAPIGetUTF8Text.restype = text
        lib.TessBaseAPIGetUTF8Text.argtypes = [handle]
        lib.TessDeleteText.restype = None
        lib.TessDeleteText.argtypes = [text]
        lib.TessBaseAPIClear.restype = None
        lib.TessBaseAPIClear.argtypes = [handle]
        lib.TessBaseAPIEnd.restype = None
        lib.TessBaseAPIEnd.argtypes = [handle]
        lib.TessBaseAPIDelete.restype = None
        lib.TessBaseAPIDelete.argtypes = [handle]
        lib.TessMonitorCreate.restype = handle
        lib.TessMonitorCreate.argtypes = []
        lib.TessMonitorSetDeadlineMSecs.restype = None
        lib.TessMonitorSetDeadlineMSecs.argtypes = [handle, ctypes.c_int]
        lib.TessMonitorDelete.restype = None
        lib.TessMonitorDelete.argtypes = [handle]
        self.lib = lib


class _Engine:
    """One Tesseract engine with its models loaded, used by one thread at a time."""

    def __init__(self, tess: _TessLib, languages: str) -> None:
        self.tess = tess
        self.lock = threading.Lock()
        self.handle = tess.lib.TessBaseAPICreate()
        if not self.handle or tess.lib.TessBaseAPIInit3(self.handle, None, languages.encode()):
            self.close()
            raise RuntimeError(f"Tesseract cannot load the languages {languages!r}")
        tess.lib.TessBaseAPISetPageSegMode(self.handle, OCR_PSM)
        # Its diagnostics ("Line cannot be recognized!!") went to the program's
        # stderr, which pytesseract discarded; in process they would reach ours.
        tess.lib.TessBaseAPISetVariable(self.handle, b"debug_file", os.devnull.encode())

    def read(self, image: np.ndarray) -> str:
        pixels = np.ascontiguousarray(image, np.uint8)
        height, width = pixels.shape[:2]
        depth = 1 if pixels.ndim == 2 else pixels.shape[2]
        lib = self.tess.lib
        with self.lock:
            # SetImage copies the pixels; the deadline stops a runaway recognition.
            lib.TessBaseAPISetImage(
                self.handle, pixels.ctypes.data, width, height, depth, int(pixels.strides[0])
            )
            monitor = lib.TessMonitorCreate()
            try:
                lib.TessMonitorSetDeadlineMSecs(monitor, OCR_TIMEOUT_S * 1000)
                if lib.TessBaseAPIRecognize(self.handle, monitor) != 0:
                    raise RuntimeError("Tesseract failed or timed out")
                raw = lib.TessBaseAPIGetUTF8Text(self.handle)
                if not raw:
                    raise RuntimeError("Tesseract returned no text")
                try:
                    return ctypes.string_at(raw).decode("utf-8", "replace")
                finally:
                    lib.TessDeleteText(raw)
            finally:
                lib.TessMonitorDelete(monitor)
                lib.TessBaseAPIClear(self.handle)

    def close(self) -> None:
        if self.handle:
            self.tess.lib.TessBaseAPIEnd(self.handle)
            self.tess.lib.TessBaseAPIDelete(self.handle)
            self.handle = None


_tess: _TessLib | None = None
_tess_loaded = False
_engines: dict[tuple[int, str], _Engine] = {}  # (process id, languages): not across fork
_engines_lock = threading.Lock()


def _engine(languages: str) -> _Engine | None:
    """This process's engine for `languages`, None when libtesseract cannot be loaded."""
    global _tess, _tess_loaded
    key = (os.getpid(), languages)
    with _engines_lock:
        if (engine := _engines.get(key)) is not None:
            return engine
        if not _tess_loaded:
            _tess_loaded = True
            path = ctypes.util.find_library("tesseract")
            try:
                _tess = _TessLib(path) if path else None
            except (OSError, AttributeError):  # absent, or too old for this API
                _tess = None
        if _tess is None:
            return None
        engine = _Engine(_tess, languages)
        _engines[key] = engine
        return engine


@atexit.register
def _close_engines() -> None:
    # Ended before the library's own clean-up, which otherwise reports leaks.
    pid = os.getpid()
    with _engines_lock:
        for (owner, _), engine in list(_engines.items()):
            if owner == pid:
                engine.close()
        _engines.clear()


def tokens(text: str) -> list[str]:
    return [t.casefold() for t in _WORD.findall(text)]


def keyword_similarity(keyword: str, words: list[str]) -> float:
    """Best difflib ratio of the keyword against any run of as many OCR tokens.

    Runs of one more token are tried too, glued, because OCR sometimes splits a
    word ("БЮЛЛЕ ТЕНЬ").
    """
    wanted = tokens(keyword)
    if not wanted or not words:
        return 0.0
    target = " ".join(wanted)
    glued_target = "".join(wanted)
    best = 0.0
    n = len(wanted)
    for size in (n, n + 1):
        for i in range(0, max(0, len(words) - size) + 1):
            run = words[i : i + size]
            for cand, goal in ((" ".join(run), target), ("".join(run), glued_target)):
                if abs(len(cand) - len(goal)) > max(3, len(goal) // 2):
                    continue
                best = max(best, difflib.SequenceMatcher(None, goal, cand).ratio())
    return best


def keyword_scores(text: str, keywords: list[str]) -> dict[str, float]:
    words = tokens(text)
    return {k: keyword_similarity(k, words) for k in keywords}


def text_scale(gray: np.ndarray) -> float:
    """Scale bringing the region's typical letter height to TEXT_HEIGHT.

    Letter height is taken from the connected ink components of letter-like
    shape; it needs no knowledge of the font or the page size.
    """
    ink = (gray < 128).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    heights = [
        int(h)
        for x, y, w, h, area in stats[1:n]
        if h >= 5 and w >= 2 and w <= 3 * h and h <= gray.shape[0] / 3 and area >= 8
    ]
    if len(heights) < 5:
        return 1.0
    # Upper-quartile height: capitals and ascenders, close to what Tesseract's line is.
    letter = float(np.percentile(heights, 75))
    return float(np.clip(TEXT_HEIGHT / letter, 0.2, 3.0))


def edge_sharpness(gray: np.ndarray) -> float:
    """A reference-free blur measure: steepness of the strongest edges.

    At an edge of contrast C blurred by sigma the steepest gradient is about
    C / (2.5 sigma), so gradient over local range falls as blur grows whatever
    the exposure or the subject (a page, a receipt, a room).
    """
    img = gray.astype(np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8
    kernel = np.ones((7, 7), np.uint8)
    local_range = cv2.dilate(gray, kernel).astype(np.float32) - cv2.erode(gray, kernel)
    edges = local_range > EDGE_MIN_RANGE
    if int(edges.sum()) < 100:
        return 0.0
    ratio = cv2.magnitude(gx, gy)[edges] / local_range[edges]
    return float(np.percentile(ratio, 95))


def blurred_versions(reference_crop: np.ndarray) -> list[np.ndarray]:
    """The reference crop blurred by each of BLUR_SIGMAS (precomputed at load)."""
    img = reference_crop.astype(np.float32)
    return [img if s == 0 else cv2.GaussianBlur(img, (0, 0), s) for s in BLUR_SIGMAS]


def estimate_blur(photo_crop: np.ndarray, versions: list[np.ndarray]) -> tuple[float, float]:
    """Blur of the photo as the Gaussian sigma (crop pixels) that best explains it.

    The aligned photo is compared with progressively blurred copies of the
    reference; noise and JPEG artefacts do not correlate with the print, so
    unlike Laplacian energy this does not mistake grain for sharpness.
    Returns (sigma, best correlation).
    """
    photo = photo_crop.astype(np.float32)
    m = BLUR_SEARCH
    h, w = photo.shape
    if h <= 2 * m + 4 or w <= 2 * m + 4:
        return 0.0, 0.0
    # Residual misalignment would read as blur: find the shift on a mid blur first.
    middle = versions[len(versions) // 2][m : h - m, m : w - m]
    result = cv2.matchTemplate(photo, middle, cv2.TM_CCOEFF_NORMED)
    _, _, _, (dx, dy) = cv2.minMaxLoc(result)
    window = photo[dy : dy + h - 2 * m, dx : dx + w - 2 * m]
    best_sigma, best = 0.0, -1.0
    for sigma, version in zip(BLUR_SIGMAS, versions, strict=True):
        corr = float(
            cv2.matchTemplate(window, version[m : h - m, m : w - m], cv2.TM_CCOEFF_NORMED)[0, 0]
        )
        if corr > best:
            best_sigma, best = sigma, corr
    return best_sigma, best


def stack(crops: list[np.ndarray]) -> np.ndarray:
    width = max(c.shape[1] for c in crops) + 2 * CROP_GAP
    parts = [np.full((CROP_GAP, width), 255, np.uint8)]
    for c in crops:
        row = np.full((c.shape[0], width), 255, np.uint8)
        row[:, CROP_GAP : CROP_GAP + c.shape[1]] = c
        parts += [row, np.full((CROP_GAP, width), 255, np.uint8)]
    return np.vstack(parts)


def plan_header(
    reference: np.ndarray, first_box_top: int, keywords: list[str], languages: str
) -> HeaderPlan:
    """Locate every keyword in the reference header; raise ValueError if one is absent.

    Remembered per process for the same reference pixels and arguments: reading the
    header takes Tesseract about 3 s a scale on the seeded ballot (6 s in all), and a
    template is loaded again for every election load and every cold worker cache,
    while its header never changes. A failure is not remembered."""
    digest = hashlib.sha256(reference.tobytes()).hexdigest()
    return _plan_header(
        digest, reference.shape, reference, first_box_top, tuple(keywords), languages
    )


_HEADER_PLANS = 16  # templates whose header plan one process remembers


def _plan_header(
    digest: str,
    shape: tuple[int, ...],
    reference: np.ndarray,
    first_box_top: int,
    keywords: tuple[str, ...],
    languages: str,
) -> HeaderPlan:
    key = (digest, shape, first_box_top, keywords, languages)
    with _plans_lock:
        if (plan := _plans.get(key)) is not None:
            return plan
    plan = _read_header_plan(reference, first_box_top, list(keywords), languages)
    with _plans_lock:
        _plans[key] = plan
        while len(_plans) > _HEADER_PLANS:
            _plans.pop(next(iter(_plans)))
    return plan


_plans: dict[tuple[object, ...], HeaderPlan] = {}
_plans_lock = threading.Lock()


def _read_header_plan(
    reference: np.ndarray, first_box_top: int, keywords: list[str], languages: str
) -> HeaderPlan:
    width = reference.shape[1]
    region: Rect = (0, 0, width, max(1, first_box_top))
    header = reference[: region[3], :]
    region_scale = text_scale(header)
    # Headers mix print sizes (a big title, small instructions); reading at a few
    # scales lets each size be seen near the height Tesseract prefers.
    words: list[tuple[str, tuple[float, float, float, float]]] = []
    # The two cheap scales are always read: stopping at the first that finds each
    # keyword could settle for small print when the title says it too. Full
    # scale (slow on a big header) only when a keyword is still missing.
    for factor in (0.5, 0.25, 1.0):
        if factor == 1.0 and all(
            keyword_similarity(k, [w for w, _ in words]) >= FOUND_ON_REFERENCE for k in keywords
        ):
            break
        scale = region_scale * factor
        if scale * min(header.shape) < 2 * TEXT_HEIGHT:
            continue
        image = warp_region(reference, np.eye(3), region, scale)
        data = pytesseract.image_to_data(
            image,
            lang=languages,
            config=OCR_CONFIG,
            output_type=pytesseract.Output.DICT,
            timeout=OCR_TIMEOUT_S,
        )
        line: list[tuple[str, tuple[float, float, float, float]]] = []
        for text, x, y, w, h in zip(
            data["text"], data["left"], data["top"], data["width"], data["height"], strict=True
        ):
            toks = tokens(text)
            if toks:
                line.append((toks[0], (x / scale, y / scale, w / scale, h / scale)))
        words += [*line, ("", (0.0, 0.0, 0.0, 0.0))]  # a break: runs never span scales
    spots: list[KeywordSpot] = []
    for keyword in keywords:
        n = len(tokens(keyword)) or 1
        found: list[tuple[float, tuple[float, float, float, float]]] = []
        for i in range(len(words) - n + 1):
            run = words[i : i + n]
            ratio = keyword_similarity(keyword, [w for w, _ in run])
            xs = [r[0] for _, r in run] + [r[0] + r[2] for _, r in run]
            ys = [r[1] for _, r in run] + [r[1] + r[3] for _, r in run]
            if all(w for w, _ in run):
                found.append((ratio, (min(xs), min(ys), max(xs), max(ys))))
        best = max((r for r, _ in found), default=0.0)
        if best < MIN_RATIO:
            raise ValueError(
                f"keyword {keyword!r} is not readable in the reference header "
                f"(above the first option box); best OCR similarity {best:.2f}"
            )
        # Of the occurrences read (nearly) as well, the largest print survives a
        # poor photo best: a title rather than the small print of instructions.
        near = [rect for r, rect in found if r >= max(MIN_RATIO, best - 0.1)]
        best_rect = max(near, key=lambda rect: rect[3] - rect[1])
        x0, y0, x1, y1 = best_rect
        height = y1 - y0
        # Margins absorb residual misalignment and keep whole letters in view.
        mx, my = 1.2 * height, 0.5 * height
        rect: Rect = (
            max(0, int(x0 - mx)),
            max(0, int(y0 - my)),
            min(width, int(x1 + mx)),
            min(region[3], int(y1 + my)),
        )
        spots.append(KeywordSpot(keyword, rect, float(np.clip(TEXT_HEIGHT / height, 0.2, 3.0))))
    crops = [normalise_light(warp_region(reference, np.eye(3), s.rect, s.scale)) for s in spots]
    # The second-chance read of the whole header uses the keywords' own scale,
    # bounded so one slow call cannot take seconds.
    fallback_scale = min(max(s.scale for s in spots), MAX_FALLBACK_WIDTH / width)
    return HeaderPlan(region, fallback_scale, spots, blurred_versions(stack(crops)))


def keyword_crops(plan: HeaderPlan, photo: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """The keyword neighbourhoods of the aligned photo, light-normalised and stacked."""
    crops = [warp_region(photo, homography, s.rect, s.scale) for s in plan.spots]
    return stack([normalise_light(c) for c in crops])


def normalise_light(gray: np.ndarray) -> np.ndarray:
    """Divide by a local paper estimate so shadows do not turn into OCR noise.

    Crops are already scaled to TEXT_HEIGHT, so a window of about half a line
    always reaches paper between strokes.
    """
    size = TEXT_HEIGHT // 2 | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    paper = cv2.blur(cv2.dilate(gray, kernel), (size, size))
    return cv2.divide(gray, np.maximum(paper, 1), scale=255)


def check_keywords(
    plan: HeaderPlan,
    photo: np.ndarray,
    homography: np.ndarray,
    keywords: list[str],
    languages: str,
) -> dict[str, float]:
    """Similarity per keyword on the aligned photo (first the crops, then the header)."""
    image = keyword_crops(plan, photo, homography)
    scores = keyword_scores(run_tesseract(image, languages), keywords)
    if min(scores.values()) >= MIN_RATIO:
        return scores
    whole = normalise_light(warp_region(photo, homography, plan.region, plan.region_scale))
    second = keyword_scores(run_tesseract(whole, languages), keywords)
    return {k: max(scores[k], second[k]) for k in keywords}
