import io

import numpy as np
from PIL import Image

from audio import synth
from audio.spectrogram import SpectrogramStyle, encode_palette_png, power_spectrogram, render_png, to_db

RATE = 16000


def _tone(freq, seconds, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_png_is_a_readable_image_with_axes_and_colour_bar():
    png = render_png(synth.sine_sweep(5.0, RATE), RATE, 'clip.wav')
    image = Image.open(io.BytesIO(png))
    assert image.format == 'PNG' and image.mode in ('RGB', 'P')  # P: a palette PNG
    style = SpectrogramStyle()
    assert image.height > style.n_fft // 2 and style.min_width < image.width < style.max_width + 200
    pixels = np.asarray(image.convert('RGB'))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a colour scale, not a blank


def test_a_tone_lights_up_its_frequency_row():
    power, _ = power_spectrogram(_tone(2000, 1.0), SpectrogramStyle())
    peak_bin = int(np.argmax(power.mean(axis=1)))
    assert abs(peak_bin * RATE / SpectrogramStyle().n_fft - 2000) <= RATE / SpectrogramStyle().n_fft


def test_low_frequencies_are_drawn_at_the_bottom():
    style = SpectrogramStyle()
    image = np.asarray(Image.open(io.BytesIO(render_png(_tone(300, 2.0), RATE, 'low', style))).convert('L'))
    from audio.spectrogram import BOTTOM, LEFT, TOP
    plot = image[TOP:image.shape[0] - BOTTOM, LEFT + 5:LEFT + 100]
    brightest_row = int(np.argmax(plot.mean(axis=1)))
    assert brightest_row > 0.9 * plot.shape[0]


def test_db_scale_is_relative_to_the_peak_and_floored():
    db = to_db(np.array([[1.0, 0.1, 0.0]]), top_db=80)
    np.testing.assert_allclose(db, [[0.0, -10.0, -80.0]], atol=1e-6)


def test_long_input_is_pooled_to_a_bounded_width():
    style = SpectrogramStyle(max_width=800)
    power, frames_per_column = power_spectrogram(np.zeros(RATE * 600, np.float32) + 0.01, style)
    assert power.shape[1] <= 800 and frames_per_column > 1
    image = Image.open(io.BytesIO(render_png(np.zeros(RATE * 600, np.float32), RATE, 'long', style)))
    assert image.width <= 800 + 200


def test_pooling_keeps_a_short_event_visible():
    signal = np.zeros(RATE * 300, np.float32)
    signal[RATE * 100:RATE * 100 + 800] = _tone(3000, 0.05)  # 50 ms in 5 minutes
    power, _ = power_spectrogram(signal, SpectrogramStyle(max_width=400))
    assert power.max() > 1.0  # max-pooling, not averaging, keeps the blip


def test_clip_shorter_than_one_fft_frame_renders():
    png = render_png(np.ones(100, np.float32) * 0.1, RATE, 'tiny')
    assert Image.open(io.BytesIO(png)).width > 0


def test_event_bands_are_drawn_under_the_time_axis_at_the_plot_time_scale():
    import io

    import numpy as np
    from PIL import Image

    from audio.spectrogram import EVENT_STRIP, add_event_bands, plot_columns, render_png
    from audio.synth import sine_sweep

    png = render_png(sine_sweep(4.0, 16000), 16000, 'x.wav')
    marked = add_event_bands(png, 4.0, [(1.0, 2.0, 'tone')])
    with Image.open(io.BytesIO(png)) as before, Image.open(io.BytesIO(marked)) as after:
        assert after.size == (before.width, before.height + EVENT_STRIP)
        assert np.array_equal(np.asarray(after)[:before.height], np.asarray(before))   # the plot is untouched
        strip = np.asarray(after.convert('RGB'))[before.height:]
    left, width = plot_columns(before.width)
    coloured = np.flatnonzero((strip[4] != 255).any(axis=1))   # the band's row
    assert abs(coloured[0] - (left + (width - 1) * 0.25)) <= 1 and abs(coloured[-1] - (left + (width - 1) * 0.5)) <= 1


def test_the_palette_png_encoder_writes_what_pillow_reads_back_exactly():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    palette = rng.integers(0, 256, 768, dtype=np.uint8).tolist()
    with Image.open(io.BytesIO(encode_palette_png(pixels, palette))) as image:
        image.load()
        assert image.mode == 'P' and image.size == (53, 37)
        assert image.getpalette() == palette
        np.testing.assert_array_equal(np.asarray(image), pixels)
