"""``python -m mobile_stub``: the phone app's logic, from a terminal."""

from mobile_stub.cli import app

app()
