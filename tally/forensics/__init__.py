"""Election forensics: the statistical tests and estimates on official figures.

Pure functions: numbers in, numbers out (numpy arrays and JSON-ready dicts), no
database, no files, no clock. Seeded random draws are deterministic. SQL lives in
the repositories; ``analysis.analyse`` runs everything in one call.

- ``integer_percent``: Kobak, Shpilkin & Pshenichnikov's integer-percentage test.
- ``klimek``: the turnout x leader-share histogram and Klimek et al.'s fraud-model
  fit (summary.json calls this test "fingerprint", after the spec).
- ``shpilkin``: Shpilkin's anomalous-vote estimate.
- ``outliers``: turnout and share outliers within districts (Benjamini-Hochberg).
- ``digits``: second-digit and last-digit tests (low weight).
- ``estimates``: the result implied by stations without proof flags.
- ``crowd_estimate``: the official result corrected to verified crowd evidence.
- ``bootstrap``: the resampling over stations behind every interval.
- ``analysis``: all of the above on one election (``analyse``).
"""
