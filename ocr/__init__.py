"""Reading ballot photos (ballot-template/1).

- `ocr.images`: defensive decoding of uploads, metadata-free re-encoding.
- `ocr.template`: template validation and one-time preparation (`load_template`).
- `ocr.align`: finding the ballot in a photo (ORB + RANSAC homography, refinement).
- `ocr.header`: Tesseract on the header keywords; blur estimation.
- `ocr.marks`: ink added in each mark box compared with the reference.
- `ocr.ink`: the ink hash (fingerprint) of an aligned ballot, for near-duplicates.
- `ocr.reader`: the verdict (`read_ballot`, `read_ballot_files`).

Nothing is imported here, so `import ocr.images` stays free of OpenCV/Tesseract.
"""
