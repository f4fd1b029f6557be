"""Sizes are written one way everywhere on the page: decimal units, as Streamlit's uploader shows them."""
from app.media import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES
from app.units import KB, MB, limit_text, size_text
from app.upload import check_upload


def test_sizes_use_decimal_units_with_one_decimal():
    assert size_text(900) == '900 B'
    assert size_text(150_000) == '150.0 KB'
    assert size_text(153_600_000) == '153.6 MB'   # what the uploader shows for that file, not "150,000 KB"
    assert size_text(KB) == '1.0 KB'


def test_the_limits_read_as_the_docs_say():
    assert limit_text(MAX_AUDIO_BYTES) == '64 MB' and limit_text(MAX_IMAGE_BYTES) == '20 MB'
    assert check_upload('a.wav', 3 * MB, 2 * MB) == '3.0 MB is over the 2 MB limit'
