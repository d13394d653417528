"""The relation model as a ``transformers`` model: an encoder, a relation head and attribute heads.

``RelationModel`` is a ``PreTrainedModel`` with its own ``RelationModelConfig``, so
``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` work on it and it is stored
as ``config.json`` + ``model.safetensors`` like any other model; no hand-written head
files. The config carries everything inference needs: the relation labels, the
attributes and their choices, the candidate settings and the threshold.

The encoder reads a window of text with every candidate pair's markers levitated
after it (``relation_data``); every pair is classified from its two start-marker
states (with ``pair_context="mean"``, also the mean state of the text between its
spans), so a batch holds packed windows, and ``pair_index`` / ``attr_index`` /
``pair_between`` say which states to read.
The relation head is multi-label (one sigmoid per relation label), because a span
pair may hold several relations; a pair with no relation is all zeros. Training
learns each label only from pairs whose entity labels the schema allows it for.
Each attribute head classifies its span's start-marker state into the attribute's
choices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from conflict_ie.errors import ConfigError
from conflict_ie.relation_data import SPAN_MARKERS


#: What the relation head reads besides the pair's two start markers (``RelationModelConfig.pair_context``).
PAIR_CONTEXTS = ("none", "mean")


class RelationModelConfig(PretrainedConfig):
    """Configuration of :class:`RelationModel`; ``encoder`` is the encoder's own config.

    Example:
        >>> from transformers import BertConfig
        >>> c = RelationModelConfig(encoder=BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                         intermediate_size=8).to_dict(), relation_labels=["FIGHTS"])
        >>> c.encoder.hidden_size, c.relation_labels
        (8, ['FIGHTS'])
    """

    model_type = "conflict_ie_relation"

    def __init__(self, encoder: dict | PretrainedConfig | None = None, relation_labels: list[str] | None = None,
                 attributes: list[dict[str, Any]] | None = None, max_input_tokens: int = 192,
                 max_sentence_distance: int = 1, max_token_distance: int = 80, threshold: float = 0.5,
                 dropout: float = 0.1, design: str = "per_pair", max_pairs: int = 32, pair_context: str = "none",
                 markers: str = "start_end", **kwargs):
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            encoder = AutoConfig.for_model(encoder.pop("model_type", "bert"), **encoder)
        self.encoder = encoder
        self.relation_labels = list(relation_labels or [])
        #: ``[{"name", "applies_to": [...], "choices": [...]}]``, in head order.
        self.attributes = [dict(a) for a in attributes or []]
        # Not "max_length": transformers reads that name as a generation setting.
        self.max_input_tokens = int(max_input_tokens)
        self.max_sentence_distance = int(max_sentence_distance)
        self.max_token_distance = int(max_token_distance)
        self.threshold = float(threshold)
        self.dropout = float(dropout)
        # A folder written before the one-pass design has no ``design`` and reads as "per_pair",
        # which the inference refuses with a message rather than reading its markers wrongly.
        self.design = str(design)
        self.max_pairs = int(max_pairs)
        # "mean": the relation head also reads the mean state of the text between the two spans
        # (SpERT's localised context, mean- rather than max-pooled: a difference of running sums costs
        # nothing per pair). A folder written before this setting reads as "none", its head unchanged.
        if pair_context not in PAIR_CONTEXTS:
            raise ValueError(f"pair_context is one of {PAIR_CONTEXTS}, got {pair_context!r}")
        self.pair_context = str(pair_context)
        # "start": one marker per span, at its first token (the head reads only that one), so a pair
        # costs two marker tokens instead of four. A folder written before this setting reads as
        # "start_end", its markers unchanged.
        if markers not in SPAN_MARKERS:
            raise ValueError(f"markers is one of {SPAN_MARKERS}, got {markers!r}")
        self.markers = str(markers)
        super().__init__(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if isinstance(self.encoder, PretrainedConfig):
            out["encoder"] = self.encoder.to_dict()
        return out


class RelationModel(PreTrainedModel):
    """Encoder + multi-label relation head over [head marker; tail marker] + one head per attribute."""

    config_class = RelationModelConfig
    base_model_prefix = "relation"

    def __init__(self, config: RelationModelConfig):
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder)
        hidden = config.encoder.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        reads = 3 if config.pair_context == "mean" else 2
        self.relation_head = nn.Linear(reads * hidden, max(len(config.relation_labels), 1))
        self.attribute_heads = nn.ModuleList(nn.Linear(hidden, len(a["choices"])) for a in config.attributes)
        self.post_init()

    def _init_weights(self, module):
        # The heads start as a BERT classifier does; the encoder's own modules are initialised
        # (or loaded) by the encoder's class.
        if isinstance(module, nn.Linear) and (module is self.relation_head or module in self.attribute_heads):
            module.weight.data.normal_(0.0, 0.02)
            module.bias.data.zero_()

    @classmethod
    def from_encoder(cls, base: str, vocab_size: int, encoder_layers: int = 0, **settings) -> "RelationModel":
        """A new relation model around the pretrained encoder ``base``, its embeddings resized to
        ``vocab_size`` (the tokenizer with the marker tokens added). ``encoder_layers`` > 0 keeps
        only the encoder's first that many layers (0: all).

        Example:
            >>> # RelationModel.from_encoder("bert-base-uncased", len(tok), relation_labels=["FIGHTS"])
        """
        extra = {}
        if encoder_layers:
            # transformers builds the shallower encoder from the config and loads the first layers'
            # weights by name (the others are reported unused); the saved config then says how deep it is.
            available = AutoConfig.from_pretrained(base).num_hidden_layers
            if encoder_layers > available:
                raise ConfigError(f"relations.encoder_layers is {encoder_layers}, but the base model {base} "
                                  f"has {available} layers")
            extra["num_hidden_layers"] = encoder_layers
        encoder = AutoModel.from_pretrained(base, **extra)
        encoder.resize_token_embeddings(vocab_size)
        model = cls(RelationModelConfig(encoder=encoder.config.to_dict(), **settings))
        model.encoder = encoder
        model.config.encoder = encoder.config
        return model

    def forward(self, input_ids, attention_mask, position_ids, pair_index, attr_index, rel_labels=None,
                rel_mask=None, attr_label=None, pair_between=None):
        """``attention_mask``: the 4-D additive mask of levitated markers (``RelationCollator``);
        ``pair_index``: ``(P, 3)`` rows of (input, head start marker, tail start marker);
        ``attr_index``: ``(A, 3)`` rows of (input, span start marker, attribute index);
        ``pair_between``: ``(P, 2)`` token ranges between each pair's spans (read with ``pair_context``)."""
        # token_type_ids given explicitly: BERT's default buffer is 512 long, and markers can go past it.
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        out = self.heads(states, pair_index, attr_index, pair_between)
        if rel_labels is not None or attr_label is not None:
            losses = []
            if rel_labels is not None and len(rel_labels):
                losses.append(relation_loss(out["relation_logits"], rel_labels, rel_mask))
            for k, logits in enumerate(out["attribute_logits"]):
                mine = attr_index[:, 2] == k
                if attr_label is not None and mine.any():
                    losses.append(nn.functional.cross_entropy(logits[mine], attr_label[mine]))
            out["loss"] = torch.stack(losses).mean() if losses else states.sum() * 0.0
        return out

    def heads(self, states, pair_index, attr_index, pair_between=None):
        """The relation and attribute logits from encoder states (a runner's output at inference)."""
        states = states.to(self.relation_head.weight.dtype)
        h = self.dropout(states[pair_index[:, 0], pair_index[:, 1]])
        t = self.dropout(states[pair_index[:, 0], pair_index[:, 2]])
        a = self.dropout(states[attr_index[:, 0], attr_index[:, 1]])
        reads = [h, t]
        if self.config.pair_context == "mean":
            if pair_between is None:
                raise ValueError("this relation model reads the text between each pair: pass pair_between")
            reads.append(self.dropout(between_mean(states, pair_index[:, 0], pair_between)))
        out = {"relation_logits": self.relation_head(torch.cat(reads, dim=-1)),
               "attribute_logits": [head(a) for head in self.attribute_heads]}
        return out


def relation_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of each pair's relation labels, averaged over the labels ``mask`` keeps:
    only the labels the schema allows for the pair's entity labels are learned (without the mask a
    rare label sees every other pair as a negative). ``labels`` may be soft (distillation).

    Example:
        >>> logits = torch.tensor([[0.0, 5.0]])
        >>> round(relation_loss(logits, torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])).item(), 4)
        0.6931
    """
    each = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    mask = mask if mask is not None else torch.ones_like(each)
    return (each * mask).sum() / mask.sum().clamp(min=1.0)


def between_mean(states: torch.Tensor, rows: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
    """Mean state of tokens ``[lo, hi)`` of row ``rows[p]``, for every pair ``p``; zeros for an empty range.

    A difference of running sums, so a pair costs one subtraction however far apart its spans are.

    Example:
        >>> s = torch.arange(8.0).reshape(1, 4, 2)  # one row of 4 tokens with 2-wide states
        >>> between_mean(s, torch.tensor([0, 0]), torch.tensor([[1, 3], [2, 2]])).tolist()
        [[3.0, 4.0], [0.0, 0.0]]
    """
    sums = torch.nn.functional.pad(states.cumsum(dim=1), (0, 0, 1, 0))  # sums[:, k] = states[:, :k].sum()
    lo, hi = between[:, 0], between[:, 1]
    n = (hi - lo).clamp(min=1).unsqueeze(-1).to(states.dtype)
    return (sums[rows, hi] - sums[rows, lo]) / n


# Registered so that the Auto classes know the folder's model type: AutoTokenizer reads config.json
# to choose a tokenizer, and AutoModel.from_pretrained("RUN/relations") then builds this class.
AutoConfig.register(RelationModelConfig.model_type, RelationModelConfig, exist_ok=True)
AutoModel.register(RelationModelConfig, RelationModel, exist_ok=True)
