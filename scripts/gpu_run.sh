#!/usr/bin/env bash
# Train and evaluate experiments on a lent GPU machine whose copy of the tree has no data.
#
# The archive travels in parts, made here with
#   mkdir -p .devdata/{a,b,c}; split -n 3 -d UTKFace.tar.gz utkpart_; mv utkpart_0{0,1,2} into a, b, c
# (.devdata is excluded from git); each call of the device tool carries one part, which is
# collected in $DEVDATA until all are there. The tree there has no .git: set RESEARCH_GIT_COMMIT.
#   bash scripts/gpu_run.sh collect              # store the carried part(s)
#   bash scripts/gpu_run.sh run CONFIG [CONFIG]  # assemble, check sha256, train + evaluate each
# Results come back as one tarball in $OUT (the tool returns at most 8 files).
set -euo pipefail
DEVDATA=${DEVDATA:-/root/devdata}
SHA=8869054e26ecdd0f193e0b0021bee9325947c00a5949b272d97c26ff61ba40c4
mkdir -p "$DEVDATA"
for part in .devdata/*/utkpart_*; do [ -f "$part" ] && cp "$part" "$DEVDATA/"; done
ls -la "$DEVDATA"
[ "${1:-}" = "collect" ] && exit 0
: "${RESEARCH_GIT_COMMIT:?set RESEARCH_GIT_COMMIT to the commit being run}"
shift
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
cat "$DEVDATA"/utkpart_* > "$DEVDATA/UTKFace.tar.gz"
echo "$SHA  $DEVDATA/UTKFace.tar.gz" | sha256sum -c -
export UTKFACE="$DEVDATA/UTKFace.tar.gz"
nvidia-smi -L
for config in "$@"; do
  python3 scripts/train.py --config "$config" --profile gpu
  python3 scripts/evaluate.py --run "results/runs/$config"
  tar czf "${OUT:-/tmp}/$config.tar.gz" --exclude=checkpoints -C results/runs "$config"
done
