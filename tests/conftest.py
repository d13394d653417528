import os
import sys
from pathlib import Path

import pytest

# Never reach the Hub from tests; tiny models are built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def schema():
    from conflict_ie.schema import LabelSchema

    return LabelSchema.load("conflict")


def load_script(name: str):
    """``scripts/NAME.py`` imported as a module, for tests of the scripts' functions and ``main``.

    ``scripts/`` goes on ``sys.path``, since scripts import each other (``bench_predict``,
    ``compare_relations``), and the module into ``sys.modules``, since a script's dataclasses look
    their module up there while the class is made.
    """
    import importlib.util

    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the read-only ../shared folder beside the repository")
    return path


BODIES = [
    "{Wagner Group|ARMED_GROUP#g} fighters killed {12 villagers|CASUALTY_FIGURE#c=killed} in {Bakhmut|LOCATION#l} "
    "with {drones|WEAPON}.\n--- relations\nc PERPETRATOR g\nc LOCATED_IN l",
    "{Governor Ivan Petrov|OFFICIAL#o} of {Belgorod|LOCATION#l} said {Russian forces|ARMED_GROUP#g} repelled an "
    "attack. Later {two soldiers|CASUALTY_FIGURE#c=captured} were taken.\n--- relations\no AFFILIATED_WITH l\n"
    "g LOCATED_IN l",
    "{Al-Shabaab|ARMED_GROUP#g} militants wounded {three soldiers|CASUALTY_FIGURE#c=injured} near "
    "{Mogadishu|LOCATION#l}. {Somali forces|ARMED_GROUP#h} fought back.\n--- relations\nc PERPETRATOR g\n"
    "c LOCATED_IN l\nh FIGHTS g",
]


def distinct_body(i: int) -> str:
    """``BODIES[i % 3]`` with a sentence naming ``i``: a corpus refuses the same text twice."""
    body = BODIES[i % 3]
    text, sep, rels = body.partition("\n--- relations")
    return f"{text} It was report {i}.{sep}{rels}"


@pytest.fixture(scope="session")
def world(tmp_path_factory, schema):
    """A tiny trained run (entities and relations) on a 15-document export: (folder, export path)."""
    import json

    from conflict_ie.cli import main as cli
    from conflict_ie.labelstudio import documents_to_tasks
    from conflict_ie.markup import parse_markup
    from tiny import tiny_base_model

    tmp = tmp_path_factory.mktemp("e2e")
    docs = [parse_markup(distinct_body(i), schema, doc_id=f"d{i}") for i in range(15)]
    export = tmp / "export.json"
    export.write_text(json.dumps(documents_to_tasks(docs)))
    base = tiny_base_model(tmp / "base", [d.text for d in docs], hidden=16, layers=2)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(f"""
base_model: {base}
inputs: [{export}]
output_dir: {tmp / 'run'}
split: {{train: 0.6, validation: 0.2, test: 0.2}}
ner: {{max_length: 16, stride: 4, learning_rate: 0.05, epochs: 4, batch_size: 4, logging_steps: 2}}
relations: {{max_length: 48, learning_rate: 0.01, epochs: 2, batch_size: 8, threshold: 0.0}}
""")
    assert cli(["train", "--config", str(cfg)]) == 0
    return tmp, export
