# One image, two roles (the pattern of Google's Python Flex Template samples):
#  * the Flex Template launcher: Dataflow starts it with the launch parameters; it runs
#    pipeline/main.py, which builds the job graph and submits it;
#  * the workers' SDK container (sdk_container_image): every worker runs exactly the packages
#    the launcher validated the pipeline with.
# Built by Cloud Build (templates/build.sh, templates/cloudbuild.yaml); no local Docker needed.

# The launcher binary only: it is independent of the Beam version. Pin a dated tag with
# --build-arg TEMPLATE_LAUNCHER_IMAGE=... for a byte-for-byte reproducible build.
ARG TEMPLATE_LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:latest
FROM ${TEMPLATE_LAUNCHER_IMAGE} AS template_launcher

# Beam's SDK image: Python 3.11 and the worker boot binary. Same Beam version as requirements.txt
# (tests/templates/test_dockerfile.py fails if they differ).
FROM apache/beam_python3.11_sdk:2.77.0

# Audio decoding: libsndfile for soundfile (WAV, FLAC, OGG, MP3), the ffmpeg tools for librosa's
# audioread fallback (AAC/M4A, WMA, ...). PyAV's wheel carries its own FFmpeg libraries.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /template

# Dependencies first, in their own layer: a code change does not reinstall TensorFlow.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The pipeline package itself; its dependencies are all installed above.
COPY setup.py .
COPY audio audio
COPY cloud cloud
COPY model model
COPY pipeline pipeline
COPY results results
COPY transforms transforms
RUN pip install --no-cache-dir --no-deps . \
    && pip check

COPY --from=template_launcher /opt/google/dataflow/python_template_launcher \
    /opt/google/dataflow/python_template_launcher
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/pipeline/main.py
# Everything is installed already, so neither FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE nor
# FLEX_TEMPLATE_PYTHON_SETUP_FILE is set: the launcher starts without a pip install.

# Workers start through Beam's boot binary. Dataflow starts the launcher by its own path.
ENTRYPOINT ["/opt/apache/beam/boot"]
