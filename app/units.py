"""How the page writes sizes: one style everywhere, the one Streamlit's file uploader uses beside it.

Decimal units, as the uploader shows a dropped file's size and counts its ``max_upload_size`` (in the browsers of
Linux and macOS): 1 KB = 1,000 bytes, 1 MB = 1,000,000 bytes, written with a space: ``900 B``, ``14.6 KB``,
``153.6 MB``. A limit is a whole number of MB (``64 MB``).
"""
from __future__ import annotations

KB = 1000
MB = 1000 * KB


def size_text(size: int | float) -> str:
    """A byte count as the page shows it."""
    if size < KB:
        return f'{int(size)} B'
    if size < MB:
        return f'{size / KB:.1f} KB'
    return f'{size / MB:.1f} MB'


def limit_text(max_bytes: int) -> str:
    """A size limit, in whole MB when it is one (every limit of the page is)."""
    return f'{max_bytes / MB:g} MB' if max_bytes >= MB else size_text(max_bytes)
