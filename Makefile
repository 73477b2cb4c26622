# The two commands a new user needs (see README): `make run` and `make test`.
# Both install first; installing is idempotent (a stamp file tracks pyproject + lock).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export AIRFLOW__CORE__LOAD_EXAMPLES := False

PORT   ?= 3000
SAMPLE := {"recent_items": ["85123A", "22423", "47566"], "k": 5}

.PHONY: install install-browser run stop test test-all lint clean

# Debian's Chromium + ChromeDriver for the web page test (tests/integration/test_web_page.py), from
# the distribution's packages (no browser download); without root or apt the test skips, saying why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
install-browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver (browser tests)"; \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "warning: could not install chromium; the browser test will skip"; \
	else echo "warning: no apt-get: install Chromium + ChromeDriver yourself for the browser test"; fi

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "coldrec needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# torch first, pinned: pip takes the CPU wheel (uv/poetry would pull a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet -c requirements.lock torch==2.13.0
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# The main job: the retrain pipeline on the default dataset (online-retail) run by Airflow itself
# (`coldrec pipeline run`: the coldrec_retrain DAG via dag.test(), SQLite metadata DB in data/airflow):
# prepare, validate (Great Expectations), features (Feast apply + materialise), train, quantize,
# gate (candidate vs production and baselines on unseen cold-start shoppers), register (GTO),
# index (Milvus Lite), bundle (BentoML), promote; then the service started in the background and
# asked for a sample. Each task calls a function of coldrec/orchestration/stages.py, as the CLI and dvc.yaml do.
run: install
	-$(BIN)/coldrec serve --stop 2>/dev/null
	$(BIN)/coldrec pipeline run
	$(BIN)/coldrec serve --detach --port $(PORT)
	@echo '$$ curl -s -X POST http://127.0.0.1:$(PORT)/recommend -H "Content-Type: application/json" -d '"'"'$(SAMPLE)'"'"
	@curl -sf -X POST http://127.0.0.1:$(PORT)/recommend -H "Content-Type: application/json" -d '$(SAMPLE)' | $(BIN)/python -m json.tool
	@echo ""
	@echo "the service is up (stop it: make stop):"
	@echo "  web page   http://127.0.0.1:$(PORT)/ui/   try it as a new shopper; the model versions and their gate results"
	@echo "  API docs   http://127.0.0.1:$(PORT)/      Swagger UI (OpenAPI spec: /docs.json)"
	@echo "  models     .venv/bin/coldrec models list"
	@echo "  the code   docs/architecture.md"

# Stop the service `make run` left running.
stop: install
	$(BIN)/coldrec serve --stop

# Lint (ruff, then the mypy type check; both configured in pyproject.toml), then the unit + integration tiers; `make test-all` adds the slow tier.
test: install install-browser lint
	$(BIN)/python -m pytest -m "not slow" -q

test-all: install install-browser lint
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache
