#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the one image (Flex Template launcher + Dataflow worker SDK container) with Cloud Build,
# then the Flex Template spec that points at it.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF2'
Usage: PROJECT=my-project [REGION=us-central1] [TAG=...] templates/build.sh [--dry-run]

1. Cloud Build builds ./Dockerfile as the audio-pipeline-build service account and pushes
   $REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/audio-pipeline:$TAG (no local Docker needed).
2. gcloud dataflow flex-template build writes the template spec (image + templates/metadata.json)
   to gs://$DATAFLOW_BUCKET/templates/audio-pipeline-$TAG.json and copies it to
   gs://$DATAFLOW_BUCKET/templates/audio-pipeline.json, the one templates/run.sh launches.

TAG defaults to <git commit>-<UTC time>, so every build is a new, immutable image.
Run templates/provision.sh first.

  --dry-run   print every command instead of running it (no Google Cloud access needed)
  --help      this text
EOF2
}

parse_common_flags "$@"
((${#ARGS[@]} == 0)) || die "unexpected arguments: ${ARGS[*]} (see --help)"
load_settings
if [[ -z "${TAG:-}" ]]; then
  TAG="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo build)-$(date -u +%Y%m%d-%H%M%S)"
fi
IMAGE="$IMAGE_REPO:$TAG"
VERSIONED_TEMPLATE_FILE="gs://$DATAFLOW_BUCKET/templates/audio-pipeline-$TAG.json"

section "Image: $IMAGE (Cloud Build)"
run gcloud builds submit "$REPO_ROOT" --project="$PROJECT" --region="$REGION" \
  --config="$TEMPLATES_DIR/cloudbuild.yaml" \
  --substitutions="_IMAGE=$IMAGE,_GCS_CHECK_PATH=gs://$DATAFLOW_BUCKET/cloudbuild/source/*" \
  --service-account="projects/$PROJECT/serviceAccounts/$BUILD_SA" \
  --gcs-source-staging-dir="gs://$DATAFLOW_BUCKET/cloudbuild/source"

section "Flex Template spec: $VERSIONED_TEMPLATE_FILE -> $TEMPLATE_FILE"
# The environment here is every launch's default, whatever launches the template (run.sh, the Console,
# the REST API, Cloud Scheduler, Airflow). gcloud has no flag for the workers' image, so the spec is
# printed, the image added as defaultEnvironment.sdkContainerImage (templates/flex_spec.py), then uploaded.
capture SPEC gcloud dataflow flex-template build "$VERSIONED_TEMPLATE_FILE" --project="$PROJECT" \
  --image="$IMAGE" --sdk-language=PYTHON --metadata-file="$TEMPLATES_DIR/metadata.json" \
  --service-account-email="$WORKER_SA" --staging-location="$STAGING_LOCATION" \
  --temp-location="$TEMP_LOCATION" --worker-machine-type="$WORKER_MACHINE_TYPE" "${NETWORK_FLAGS[@]}" \
  --print-only --format='value(.)'
SPEC_FILE="$(mktemp "${TMPDIR:-/tmp}/audio-pipeline-spec.XXXXXX")"
trap 'rm -f "$SPEC_FILE"' EXIT
printf '%s\n' "$SPEC" >"$SPEC_FILE"
run python3 "$TEMPLATES_DIR/flex_spec.py" "$SPEC_FILE" "$IMAGE"
run gcloud storage cp "$SPEC_FILE" "$VERSIONED_TEMPLATE_FILE" --project="$PROJECT"
run gcloud storage cp "$VERSIONED_TEMPLATE_FILE" "$TEMPLATE_FILE" --project="$PROJECT"

section "Done"
cat <<EOF2
# Built $IMAGE. Next:
#   PROJECT=$PROJECT REGION=$REGION templates/run.sh streaming
EOF2
