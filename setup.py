"""The pipeline package: installed on the launcher and on every Dataflow worker (one image)."""
import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def requirements():
    # The direct runtime dependencies; requirements.txt pins their whole closure (the image installs that).
    lines = (HERE / 'requirements.in').read_text().splitlines()
    return [line for line in (raw.strip() for raw in lines) if line and not line.startswith(('#', '-'))]


setuptools.setup(
    name='audio-spectrogram-pipeline',
    version='0.1.0',
    description='Streaming and batch Apache Beam pipeline: audio in Cloud Storage -> spectrogram -> '
                'RunInference -> BigQuery',
    python_requires='>=3.11,<3.12',
    packages=setuptools.find_packages(include=['pipeline', 'pipeline.*', 'transforms', 'transforms.*', 'audio',
                                               'audio.*', 'cloud', 'cloud.*', 'results', 'results.*', 'model',
                                               'model.*']),
    install_requires=requirements(),
)
