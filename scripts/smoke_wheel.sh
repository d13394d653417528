#!/usr/bin/env bash
# Installed-wheel smoke test: build a wheel of this checkout, install it into a fresh virtual
# environment outside the checkout, and run the user's path (corpus build with the shipped
# schema, a tiny train, predict, publish --dry-run with the shipped model-card template) from a
# folder where nothing can be imported from the source tree. `make smoke-wheel` runs it; `.ci/run`
# too. The base model is a tiny random BERT built in the new environment, so training takes
# seconds and the default base-model package is not needed.
#
#   PYTHON=python3.12 scripts/smoke_wheel.sh     # the interpreter of the fresh environment
#   SMOKE_KEEP=1 scripts/smoke_wheel.sh          # keep the temporary folder to look at
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"   # the CPU wheel; a plain `torch` would pull a CUDA build
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_DATASETS_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONNOUSERSITE=1
unset PYTHONPATH VIRTUAL_ENV

TMP="$(mktemp -d "${TMPDIR:-/tmp}/conflict-ie-smoke.XXXXXX")"
case "$TMP/" in "$ROOT"/*) echo "smoke: the temporary folder $TMP is inside the checkout; set TMPDIR" >&2; exit 1;; esac
cleanup() {
  if [ -n "${SMOKE_KEEP:-}" ]; then echo "smoke: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

START=$SECONDS
step() { echo "smoke [$((SECONDS - START)) s]: $*"; }

VENV="$TMP/venv"
SRC="$TMP/src"
WORK="$TMP/work"
mkdir -p "$SRC" "$WORK" "$TMP/dist"

step "fresh virtual environment ($PYTHON) and $TORCH_SPEC"
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "$TORCH_SPEC"

# Build from a copy of the files git knows (tracked or new, not ignored): a stale build/ folder
# or egg-info in the checkout cannot leak into the wheel, and the checkout is not written to.
step "wheel of $ROOT"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -C "$SRC" -xf -
else
  SRC="$ROOT"
fi
"$PY" -m pip wheel -q --no-deps -w "$TMP/dist" "$SRC"
WHEEL="$(ls "$TMP"/dist/conflict_ie-*.whl)"
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["conflict_ie/schemas/conflict.yaml", "conflict_ie/schemas/conflict.labeling.xml",
        "conflict_ie/templates/model_card.md", "conflict_ie/py.typed"]
missing = [n for n in need if n not in names]
assert not missing, f"the wheel lacks {missing}"
EOF

step "install $(basename "$WHEEL") (dependencies from the package index)"
"$PY" -m pip install -q "$WHEEL"

cd "$WORK"   # outside the checkout: nothing below imports from the source tree
step "the package is imported from the environment"
"$PY" - <<'EOF'
import sysconfig
from pathlib import Path
import conflict_ie
where = Path(conflict_ie.__file__).resolve()
site = Path(sysconfig.get_paths()["purelib"]).resolve()
print(f"  conflict_ie {conflict_ie.__version__} from {where}")
assert site in where.parents, f"conflict_ie imported from {where}, not from {site}"
EOF
CLI="$VENV/bin/conflict-ie"

step "shipped labeling config equals the one the shipped schema renders"
"$CLI" schema labelstudio-config > labeling.xml
"$PY" - <<'EOF'
from importlib import resources
shipped = (resources.files("conflict_ie") / "schemas" / "conflict.labeling.xml").read_text(encoding="utf-8")
assert open("labeling.xml", encoding="utf-8").read() == shipped, "labeling config differs from the shipped one"
EOF

step "corpus build (default --schema conflict: the shipped schema)"
"$CLI" corpus build --input "$ROOT/annotations/conflict-news.json" --out corpus

step "tiny random base model"
"$PY" - "$ROOT/annotations/conflict-news.json" base <<'EOF'
import json, sys
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertModel, BertTokenizerFast, set_seed

set_seed(0)
texts = [task["data"]["text"] for task in json.load(open(sys.argv[1], encoding="utf-8"))]
wp = BertWordPieceTokenizer(lowercase=True)
wp.train_from_iterator(texts, vocab_size=800, min_frequency=1, show_progress=False)
wp.save_model(".", "tiny")
tok = BertTokenizerFast(vocab_file="tiny-vocab.txt", do_lower_case=True, model_max_length=512)
config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=512)
BertModel(config).save_pretrained(sys.argv[2])
tok.save_pretrained(sys.argv[2])
EOF

step "train (entities and relations, a few steps)"
cat > train.yaml <<EOF
base_model: $WORK/base
schema: conflict
output_dir: $WORK/run
seed: 1
ner: {max_length: 64, stride: 16, batch_size: 8, epochs: 1, max_steps: 4, logging_steps: 1}
relations: {enabled: true, max_length: 64, batch_size: 8, epochs: 1, max_steps: 2}
EOF
"$CLI" train --config train.yaml --corpus corpus
test -f run/metrics.json

step "predict"
cat > article.txt <<'EOF'
Wagner Group fighters killed 12 villagers in Bakhmut with drones, Governor Ivan Petrov said.
EOF
"$CLI" predict --model run article.txt --format json > predictions.json
"$PY" -c "import json; json.load(open('predictions.json'))"

step "publish --dry-run (the shipped model-card template)"
"$CLI" publish run --repo-id you/x --dry-run --out published
test -s published/README.md
head -1 published/README.md | grep -qx -- '---'   # the card's metadata block

step "passed in $((SECONDS - START)) s"
