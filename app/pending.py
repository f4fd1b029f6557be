"""Uploads still waiting for the pipeline: files in the input location whose version has no row yet.

Listed with the watch mode's own lister (``cloud.listing.Lister``: the same glob
rules, the same files skipped), newest first and bounded, then looked up in the
results by ``(audio_file, generation)``, the key every row carries.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.data import DashboardData
from cloud.listing import Listed, Lister

MAX_LISTED = 500   # the newest files looked at; an old backlog is the pipeline's business, not the page's


@dataclass(frozen=True)
class Pending:
    files: list[Listed]   # newest first
    looked_at: int        # how many files were listed (at most MAX_LISTED)


def pattern_of(input_location: str) -> str:
    return input_location.rstrip('/') + '/**'


def pending_uploads(data: DashboardData, input_location: str, ignore: tuple[str, ...] = ()) -> Pending:
    listed = sorted(Lister(pattern_of(input_location), ignore).list().values(), key=lambda f: f.modified,
                    reverse=True)[:MAX_LISTED]
    done = data.keys_with_rows([f.path for f in listed]) if listed else set()
    return Pending([f for f in listed if f.key not in done], len(listed))
