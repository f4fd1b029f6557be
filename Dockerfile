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

# No system packages: libsndfile (soundfile) and FFmpeg (PyAV) come inside their wheels, and nothing
# runs the ffmpeg command line.

WORKDIR /template

# Dependencies first, in their own layer: a code change does not reinstall TensorFlow. requirements.txt
# pins every package, compiled against this base image's own set (beam-image-constraints.txt).
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The pipeline package itself; its dependencies are all installed above.
COPY requirements.in setup.py ./
COPY audio audio
COPY cloud cloud
COPY model model
COPY pipeline pipeline
COPY results results
COPY transforms transforms
RUN pip install --no-cache-dir --no-deps . \
    && pip check

# The build fails here, not the first job, if the worker cannot import everything, decode audio or
# read Cloud Storage. Cloud Build passes an object its service account can read (templates/cloudbuild.yaml);
# a local `docker build` without it skips only the Cloud Storage read.
ARG GCS_CHECK_PATH=
RUN python -m pipeline.worker_check ${GCS_CHECK_PATH:+--read "$GCS_CHECK_PATH"}

COPY --from=template_launcher /opt/google/dataflow/python_template_launcher \
    /opt/google/dataflow/python_template_launcher
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/pipeline/main.py
# Everything is installed already, so neither FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE nor
# FLEX_TEMPLATE_PYTHON_SETUP_FILE is set: the launcher starts without a pip install.

# Workers start through Beam's boot binary. Dataflow starts the launcher by its own path.
ENTRYPOINT ["/opt/apache/beam/boot"]
