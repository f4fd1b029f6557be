"""MatchFiles: a path that is gone by the time it is described (deleted after the listing)."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import FileMetadata
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.sources import MatchFiles


@pytest.mark.parametrize('reconciling, failures', [
    (False, [('deleted.wav', 'read', 'ObjectGone')]),   # a replay says the file it matched is gone
    # A reconciliation adds what has no row; a deleted object has nothing left to add, and its own notification
    # gives it its row at the generation it names. A row here would be a second, generation-less one.
    (True, []),
])
def test_a_file_deleted_after_the_listing(tmp_path, reconciling, failures):
    kept = tmp_path / 'kept.wav'
    kept.write_bytes(b'RIFF')
    listed = [FileMetadata(str(kept), 4), FileMetadata(str(tmp_path / 'deleted.wav'), 4)]  # listed, then deleted
    with TestPipeline() as p:
        out = p | MatchFiles(str(tmp_path / '**'), '', listed=listed, reconciling=reconciling)
        assert_that(out.ok | 'Names' >> beam.Map(lambda o: o.name), equal_to(['kept.wav']), label='ok')
        assert_that(out.failed | 'Failures' >> beam.Map(lambda f: (f.source.name, f.stage, f.error_type)),
                    equal_to(failures), label='failed')
