# The front door. `make run` and `make test` set everything up themselves.
# Variables: DS (partition date, default yesterday), DAG (one DAG, default all),
# PLATFORM_DATA_DIR (default data/), ROWS/OUT/DIRTY for the data generators.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.9.30
SETUP_STAMP := $(VENV)/.installed

.PHONY: setup run airflow spark-up spark-down k8s-manifests grafana-dashboards test test-fast bench lint \
	students-data traffic-data sample-data clean

# Bytecode is compiled at install: where Python may not write it
# (PYTHONDONTWRITEBYTECODE=1, as on this project's machines), every Airflow
# command and task would compile its imports again, about 4 s of each
# `airflow dags test` (bench/README.md).
$(SETUP_STAMP): requirements.lock pyproject.toml Makefile
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	@test -x $(PY) || uv venv --quiet --python "$$(command -v python3.11 || command -v python3)" $(VENV)
	VIRTUAL_ENV=$(VENV) uv pip sync --quiet --compile-bytecode requirements.lock
	VIRTUAL_ENV=$(VENV) uv pip install --quiet --no-deps -e .
	@touch $@

## Also makes this install's Spark class archive once (plugins/dataplatform/spark_class_archive.py).
setup: $(SETUP_STAMP)
	@$(PY) -m dataplatform.spark_class_archive

## Run every platform DAG (or DAG=...) for DS on the embedded defaults.
run: setup
	$(PY) -m dataplatform.local_run $(if $(DS),--ds $(DS)) $(if $(DAG),--dag $(DAG))

## The Airflow UI with the platform's DAGs (airflow standalone).
airflow: setup
	$(PY) -m dataplatform.local_airflow standalone

## A Spark standalone master and worker on 127.0.0.1 (pids in .spark-standalone/).
## Then: PLATFORM_SPARK_RUNNER=standalone make run
spark-up: setup
	$(PY) -m dataplatform.local_spark start $(if $(CORES),--cores $(CORES)) $(if $(MEMORY),--memory $(MEMORY))

spark-down: setup
	$(PY) -m dataplatform.local_spark stop

## Regenerate infra/k8s/spark-applications.yaml from the job definitions.
k8s-manifests: setup
	$(PY) -m dataplatform.k8s_manifests

## Regenerate infra/grafana/dashboards/*.json from dataplatform.grafana_dashboards.
grafana-dashboards: setup
	$(PY) -m dataplatform.grafana_dashboards

## Every test; end-to-end runs are marked slow.
test: setup
	$(PY) -m pytest

## The fast set only: unit tests and DAG integrity, no end-to-end runs.
test-fast: setup
	$(PY) -m pytest -m "not slow"

## Benchmarks (minutes): bench/results/$(BENCH_NAME).json and bench/README.md.
## Smaller: make bench BENCH_ARGS="--students-rows 1000000 --traffic-rows 1000000 --traffic-rounds 1"
bench: setup
	$(PY) -m bench.run --name $(or $(BENCH_NAME),latest) $(BENCH_ARGS)

## The results API under 1, 4, 16 and 32 concurrent clients (about a minute):
## bench/results/load-$(BENCH_NAME).json and bench/README.md. Fails on any error.
.PHONY: bench-load
bench-load: setup
	$(PY) -m bench.load_results_api --name $(or $(BENCH_NAME),latest) $(BENCH_LOAD_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

## Generate a student CSV: make students-data ROWS=10000000 OUT=/tmp/students.csv DIRTY=0.01
students-data: setup
	$(PY) -m dataplatform.generators.students --rows $(or $(ROWS),400) \
		--out $(or $(OUT),data/students.csv) --dirty-fraction $(or $(DIRTY),0)

## Generate ZTE_TAD capture files: make traffic-data ROWS=10000000 OUT=/tmp/zte_tad
traffic-data: setup
	$(PY) -m dataplatform.generators.zte_tad --rows $(or $(ROWS),20000) \
		--out $(or $(OUT),data/zte_tad)

## Regenerate the committed samples used by `make run`.
sample-data: setup
	$(PY) -m dataplatform.generators.students --rows 400 --dirty-fraction 0.05 --seed 2024 \
		--out data/samples/students/students_sample.csv
	rm -rf data/samples/zte_tad
	$(PY) -m dataplatform.generators.zte_tad --rows 30000 --median-capture-rows 400 \
		--out data/samples/zte_tad

clean:
	rm -rf .airflow .spark-standalone data/landing data/staging data/quarantine data/warehouse data/metrics data/warehouse.db \
		tests/artifacts
