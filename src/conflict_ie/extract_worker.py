"""Record tables in, results tables out: the one prediction step of both extract engines.

:class:`ArticleExtractor` loads a :class:`~conflict_ie.predictor.Predictor` once and turns each
record table (:func:`conflict_ie.extract_inputs.read_shard`) into a results table
(:func:`conflict_ie.extract_tables.results_table`). The local engine calls it per batch of a
shard; the Ray engine runs it as the actor class of ``map_batches``, which is why it lives in
the installed package (Ray workers import it by name) and takes only picklable arguments.

On a GPU it predicts under ``torch.autocast(dtype=torch.bfloat16)``: matrix products in bf16,
softmax and the rest in float32, weights untouched. Autocast, not ``model.to(bfloat16)``,
because it also covers the relation model and keeps the scores' softmax in float32. It is
used only when the device is CUDA and the GPU supports bf16 (``--dtype float32`` turns it off).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from conflict_ie.errors import ConfigError
from conflict_ie.extract_inputs import MetaColumn
from conflict_ie.extract_tables import results_table

DTYPES = ("auto", "float32", "bfloat16")


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; anything else as given, checked.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {device!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: torch sees no CUDA GPU here (use auto or cpu)")
    return device


def autocast_for(device: str, dtype: str = "auto"):
    """The context that predictions run in: bf16 autocast on a CUDA device that supports it
    (``dtype`` ``auto`` or ``bfloat16``), else nothing.

    Example:
        >>> isinstance(autocast_for("cpu"), contextlib.nullcontext)
        True
    """
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
    if torch.device(device).type == "cuda" and dtype != "float32":
        if torch.cuda.is_bf16_supported():
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if dtype == "bfloat16":
            raise ConfigError("--dtype bfloat16: this GPU does not support bf16 (use auto or float32)")
    return contextlib.nullcontext()


class ArticleExtractor:
    """A loaded predictor that maps record tables to results tables.

    ``chunk_size`` texts are predicted at a time (the Predictor pools their windows into batches
    of ``batch_size``); ``node_id`` is written into the results (the Ray engine sets it).
    ``quiet`` turns off transformers' "Loading weights" bars for the whole process (an extract
    process or a Ray worker: every actor's would reach the driver's log).

    Example:
        >>> # ex = ArticleExtractor("runs/demo"); results = ex(next(read_shard(scan, scan.shards[0])))
    """

    def __init__(self, model: str, *, meta: Sequence[MetaColumn | dict] = (), device: str = "auto",
                 dtype: str = "auto", threshold: float = 0.0, relation_threshold: float | None = None,
                 batch_size: int = 8, chunk_size: int = 64, node_id: str | None = None, quiet: bool = True,
                 precision: str = "fp32", backend: str = "torch"):
        from conflict_ie.predictor import Predictor

        if quiet:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

        self.device = resolve_device(device)
        # GPU autocast belongs to the fp32 torch model; bf16, int8 and ONNX Runtime set their own types.
        plain = (precision, backend) == ("fp32", "torch")
        self._autocast = (lambda: autocast_for(self.device, dtype)) if plain else contextlib.nullcontext
        self.predictor = Predictor.from_pretrained(model, device=self.device, threshold=threshold,
                                                   relation_threshold=relation_threshold, progress=False,
                                                   precision=precision, backend=backend)
        self.meta = tuple(m if isinstance(m, MetaColumn) else MetaColumn(**m) for m in meta)
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.node_id = node_id

    def __call__(self, records: pa.Table) -> pa.Table:
        usable = records.filter(pc.is_null(records.column("reason"))).column("text").to_pylist()
        preds = []
        for i in range(0, len(usable), self.chunk_size):
            with self._autocast():
                preds += self.predictor.predict_batch(usable[i:i + self.chunk_size], batch_size=self.batch_size,
                                                      chunk_size=self.chunk_size, progress=False)
        return results_table(records, preds, self.meta, node_id=self.node_id)
