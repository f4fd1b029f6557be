"""The handler the options and the model choose: a published pack runs on its own runtime, with the run's hop."""
import pytest

from model.litert_waveform import WaveformLiteRTHandler
from pipeline.handler_choice import make_handler
from pipeline.main import parse
from pipeline.options import OptionsError


def config_for(model_uri, tmp_path, *extra):
    _, config = parse(['--input_pattern', f'{tmp_path}/in/**', '--output_table', str(tmp_path / 'r.db'),
                       '--spectrogram_location', str(tmp_path / 'png'), '--model_uri', model_uri, *extra])
    return config


def test_a_waveform_pack_gets_its_handler_and_the_overlap_moves_its_hop(birdnet_pack, tmp_path):
    handler = make_handler(config_for(birdnet_pack, tmp_path))
    assert isinstance(handler, WaveformLiteRTHandler) and handler.metadata.hop_samples == 144000
    overlapped = make_handler(config_for(birdnet_pack, tmp_path, '--window_overlap_seconds', '1.5'))
    assert overlapped.metadata.hop_samples == 72000 and overlapped.metadata.window_samples == 144000


@pytest.mark.parametrize('extra, says', [
    (('--window_overlap_seconds', '3'), r"less than the model's window \(3 s\)"),
    (('--inference_runtime', 'savedmodel'), 'LiteRT only'),
    (('--model_endpoint', 'projects/p/locations/us-central1/endpoints/1'), 'serves SavedModels'),
])
def test_what_a_pack_cannot_do_is_refused_before_the_run(birdnet_pack, tmp_path, extra, says):
    with pytest.raises(OptionsError, match=says):
        make_handler(config_for(birdnet_pack, tmp_path, *extra))
