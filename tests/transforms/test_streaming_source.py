"""The streaming source with TestStream: parsing, filtering, duplicates and out-of-order events.

TestStream stands in for ReadFromPubSub only (the Pub/Sub emulator tests in tests/e2e cover the real read);
everything after the read is the production ParseNotifications + DropRepeatedNotifications.
"""
import json
import time

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from transforms.dedupe import DropRepeatedNotifications
from transforms.sources import ParseNotifications


def message(name, generation, event='OBJECT_FINALIZE', bucket='in', message_id=None, content_type=None):
    resource = {'name': name, 'bucket': bucket, 'generation': generation, 'size': '10', 'contentType': content_type}
    return PubsubMessage(json.dumps(resource).encode(), {
        'eventType': event, 'payloadFormat': 'JSON_API_V1', 'bucketId': bucket, 'objectId': name,
        'objectGeneration': generation, 'eventTime': '2026-11-26T07:00:00Z'}, message_id=message_id)


def streaming_pipeline():
    p = TestPipeline(runner='BundleBasedDirectRunner')
    p.options.view_as(StandardOptions).streaming = True
    return p


def test_duplicates_filtered_and_out_of_order_events_kept():
    stream = (TestStream()
              .advance_watermark_to(Timestamp(100))
              .add_elements([message('b.wav', '2'), message('a.wav', '1')], event_timestamp=Timestamp(105))
              # Redelivery of a, a late event for c (earlier than the watermark), a second generation of a.
              .add_elements([message('a.wav', '1'), message('c.wav', '1')], event_timestamp=Timestamp(50))
              .advance_processing_time(10)
              .add_elements([message('a.wav', '3'), message('b.wav', '2')], event_timestamp=Timestamp(110))
              .add_elements([message('x.txt', '1', content_type='text/plain'),
                             message('d.wav', '1', event='OBJECT_DELETE'),
                             message('spectrograms/a.wav.png', '1', content_type='image/png')],
                            event_timestamp=Timestamp(111))
              .advance_watermark_to_infinity())
    with streaming_pipeline() as p:
        parsed = p | stream | ParseNotifications('gs://in/spectrograms')
        keys = (parsed.ok | DropRepeatedNotifications(ttl_seconds=3600) | beam.Map(lambda o: o.key))
        assert_that(keys, equal_to(['gs://in/a.wav#1', 'gs://in/b.wav#2', 'gs://in/c.wav#1', 'gs://in/a.wav#3']))
        assert_that(parsed.failed, equal_to([]), label='NoFailures')


def test_malformed_messages_go_to_the_failed_output_and_the_stream_goes_on():
    bad = [PubsubMessage(b'{}', {}, message_id='m-1'),
           PubsubMessage(b'{broken', {'eventType': 'OBJECT_FINALIZE', 'bucketId': 'in', 'objectId': 'z.wav',
                                      'objectGeneration': '5'})]
    stream = (TestStream().add_elements(bad + [message('ok.wav', '1')]).advance_watermark_to_infinity())
    with streaming_pipeline() as p:
        parsed = p | stream | ParseNotifications('')
        assert_that(parsed.ok | 'Keys' >> beam.Map(lambda o: o.key), equal_to(['gs://in/ok.wav#1']))
        failures = parsed.failed | beam.Map(lambda f: (f.source.uri, f.stage, f.error_type))
        assert_that(failures, equal_to([('pubsub:message/m-1', 'parse', 'MalformedNotification'),
                                        ('gs://in/z.wav', 'parse', 'MalformedNotification')]), label='Failures')


def test_a_notification_later_than_the_dedupe_window_passes_again():
    """The window is a bound, not a guarantee: a repeat (a redelivery, or a notification of an object a
    reconciliation's listing processed) more than ``ttl_seconds`` after the first passes, and the file is
    processed twice. Harmless to the rows: SQLite replaces the key's result row and events, and BigQuery's
    ``_latest`` view and every reader of events show the newest run only (tests/results/test_store.py,
    tests/results/test_latest_view.py); what it costs is a second inference of that file."""
    # Beam's dedupe sets its timer from the wall clock (Timestamp.now() + ttl), while the runner's clock under
    # TestStream starts at 0: the clock is moved past the wall clock plus the window.
    past_the_window = int(time.time()) + 2 * 60
    stream = (TestStream()
              .add_elements([message('a.wav', '1')], event_timestamp=Timestamp(100))
              .add_elements([message('a.wav', '1')], event_timestamp=Timestamp(130))   # within: dropped
              .advance_processing_time(past_the_window)
              .add_elements([message('a.wav', '1')], event_timestamp=Timestamp(191))   # past it: passes
              .advance_watermark_to_infinity())
    with streaming_pipeline() as p:
        parsed = p | stream | ParseNotifications('')
        passed = (parsed.ok | DropRepeatedNotifications(ttl_seconds=60)
                  | beam.Map(lambda o, at=beam.DoFn.TimestampParam: (o.key, int(at))))
        assert_that(passed, equal_to([('gs://in/a.wav#1', 100), ('gs://in/a.wav#1', 191)]))
