"""Tiny randomly initialised models built in-process: no downloads, seconds to train."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def word_tokenizer(texts: Iterable[str], extra: Iterable[str] = ()):
    """A fast word-level tokenizer (lower-cased, BERT pre-tokenization) over the words of ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w.lower() for t in texts for w in re.findall(r"\w+|[^\w\s]", t)} | set(extra))
    vocab = {tok: i for i, tok in enumerate(SPECIALS + [w for w in words if w not in SPECIALS])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=512,
    )


def tiny_base_model(path: Path, texts: Iterable[str], *, hidden: int = 16, layers: int = 2) -> Path:
    """Save a 2-layer, 16-dimensional random BERT and its word tokenizer as a base model folder."""
    from transformers import BertConfig, BertModel, set_seed

    set_seed(0)
    tok = word_tokenizer(texts)
    config = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=512)
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
