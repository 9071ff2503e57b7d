"""Who sends a voter the one-time code: a pluggable verifier.

A gateway (an SMS provider, a messenger bot) implements :class:`Verifier` and is
named by ``GOLOS_VERIFIER=package.module:Class`` (instantiated without arguments;
it reads its own configuration, e.g. its API key, from the environment). The
default, ``dev``, sends nothing: :class:`DevVerifier` logs the code and appends it
to a file in the data folder, where the demo's simulated phones and the tests read
it. It must never serve a real election: the platform logs a loud warning when it
starts with it (:func:`warn_if_development`).

The phone number reaches the verifier in clear (it has to send to it) and goes no
further: neither the verifier here nor the platform logs or stores it.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from infra.settings import Settings

log = logging.getLogger("golos.voters")

DEV = "dev"


class VerifierUnavailable(Exception):
    """The gateway could not send the code now (the request is answered 503)."""


@runtime_checkable
class Verifier(Protocol):
    def send_code(self, phone: str, code: str, challenge_id: uuid.UUID) -> None:
        """Send ``code`` to ``phone``; raise VerifierUnavailable when it cannot."""
        ...


class DevVerifier:
    """Development only: writes ``{"challenge_id", "code"}`` JSON lines to ``path``
    (never the phone number) and logs the code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send_code(self, phone: str, code: str, challenge_id: uuid.UUID) -> None:
        line = json.dumps({"challenge_id": str(challenge_id), "code": code}) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write of one line in append mode: processes sharing the file
            # never interleave their lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        log.info("development verifier: code %s for challenge %s (not sent)", code, challenge_id)


class DevCodeReader:
    """The simulated phones' inbox: reads the development verifier's file as it
    grows (each line once) and answers ``reader(challenge_id)`` with the code, or
    None while it has not been written. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, challenge_id: str) -> str | None:
        with self._lock:
            if challenge_id not in self._codes and self.path.exists():
                with self.path.open("rb") as handle:
                    handle.seek(self._offset)
                    for line in handle:
                        if not line.endswith(b"\n"):
                            break  # being written: read it next time
                        self._offset += len(line)
                        record = json.loads(line)
                        self._codes[record["challenge_id"]] = str(record["code"])
            return self._codes.get(challenge_id)


def dev_code(path: Path, challenge_id: str) -> str | None:
    """The code the development verifier wrote for a challenge, or None (tests)."""
    return DevCodeReader(path)(challenge_id)


def load_verifier(spec: str, dev_codes_path: Path) -> Verifier:
    """The verifier named by ``spec`` ("dev" or "package.module:Class")."""
    if spec == DEV:
        return DevVerifier(dev_codes_path)
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"GOLOS_VERIFIER must be 'dev' or 'package.module:Class', not {spec!r}")
    cls = getattr(importlib.import_module(module_name), class_name)
    verifier = cls()
    if not isinstance(verifier, Verifier):
        raise TypeError(f"{spec} has no send_code(phone, code, challenge_id) method")
    return verifier


@functools.cache
def _built(spec: str, dev_codes_path: Path) -> Verifier:
    return load_verifier(spec, dev_codes_path)


def get_verifier(settings: Settings) -> Verifier:
    """The configured verifier, built once per process."""
    return _built(settings.verifier, settings.dev_codes_path)


def warn_if_development(settings: Settings) -> None:
    """At start: refuse to start without the voters' key (``MissingVoterSecret``,
    naming GOLOS_VOTER_SECRET, unless GOLOS_DEVELOPMENT lets one be generated), and
    say loudly that codes are not being sent, when they are not."""
    settings.voter_key()
    if settings.verifier == DEV:
        log.warning(
            "\n%s\nGOLOS_VERIFIER=dev: voters' verification codes are NOT sent to their "
            "phones but written to %s.\nThis is for the demo and tests only. Set "
            "GOLOS_VERIFIER=package.module:Class (an SMS or messenger-bot gateway) for a "
            "real election.\n%s",
            "!" * 72,
            settings.dev_codes_path,
            "!" * 72,
        )
