"""The job queue's own tables (procrastinate), tracked by the same migration history."""

from procrastinate.schema import SchemaManager
from yoyo import step

__depends__: set[str] = set()

steps = [step(SchemaManager.get_schema())]
