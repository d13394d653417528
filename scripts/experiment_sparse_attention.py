#!/usr/bin/env python
"""Experiment, not shipped: attention of levitated markers that skips what the mask hides.

    python scripts/experiment_sparse_attention.py --model runs/demo [--rounds 3]

The relation encoder's mask (``RelationCollator``) lets every text token see the text and
nothing else, and every marker see the text and the markers of its own job. The dense
``(length, length)`` mask also multiplies every query with every marker key, only to mask the
result away: in a window of 128 text tokens and 160 markers, more than half the attention's
products. The question was whether skipping them makes the relation encoder faster, with the
same result: every query against the text keys only (the first ``T`` positions of a row, ``T``
the batch's longest text; a ``(batch, 1, 1, T)`` additive mask hides a shorter row's tail) and
against its own job's few keys, gathered by index (``partners``), one softmax over both. The
function is registered with transformers' ``AttentionInterface`` (the encoder's own layers and
weights run unchanged) and exported to ONNX like the shipped encoder.

On the run's relation batches (the bench's 52 texts, the entities the run finds) the script
checks that both ways give the same states (it fails otherwise), times both interleaved with
torch fp32 (the shipped path: SDPA with the dense mask) and ONNX Runtime int8, and profiles both
int8 exports by operator, to show what share of their time the attention takes.
Results: ``docs/results/sparse-attention.txt``; conclusion: ``docs/fast-relations.md``.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402

#: The name under which transformers dispatches to :func:`levitated_attention`.
ATTENTION = "levitated_markers"
#: Inputs of the sparse encoder, in the order the runner and the ONNX export take them.
INPUTS = ("input_ids", "attention_mask", "position_ids", "token_type_ids", "partners", "partner_mask")


def levitated_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        attention_mask: torch.Tensor, scaling: float | None = None, dropout: float = 0.0,
                        partners: torch.Tensor | None = None, partner_mask: torch.Tensor | None = None,
                        **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention over the text keys and each query's own job's keys; transformers' attention signature.

    ``query``/``key``/``value``: ``(batch, heads, length, head size)``; ``attention_mask``:
    ``(batch, 1, 1, T)`` additive, over the first ``T`` keys (the text); ``partners``: ``(batch,
    length, k)`` key positions each query also sees, ``partner_mask`` their additive mask.
    Returns ``(batch, length, heads, head size)`` and no weights, as transformers' eager attention.

    Example:
        >>> q = k = v = torch.randn(1, 2, 5, 4)  # batch, heads, 3 text tokens + 2 markers of one job, head size
        >>> masks = sparse_inputs([[-1, -1, -1, 0, 0]], 5, torch.finfo(torch.float).min)
        >>> out, _ = levitated_attention(None, q, k, v, masks["attention_mask"], scaling=0.5,
        ...                              partners=masks["partners"], partner_mask=masks["partner_mask"])
        >>> out.shape
        torch.Size([1, 5, 2, 4])
    """
    if partners is None or partner_mask is None:
        raise ValueError("levitated_attention needs partners and partner_mask (see sparse_inputs)")
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    text = attention_mask.size(-1)
    key_text, value_text = key[:, :, :text], value[:, :, :text]
    scores_text = torch.matmul(query, key_text.transpose(2, 3)) * scaling + attention_mask
    # Each query's own keys: whole rows of (heads x head size) copied by one flat index (a plain
    # Gather in ONNX); gathering per element would first expand the index to the keys' full size.
    b, h, n, d = query.shape
    flat = (partners + torch.arange(b, device=partners.device).view(b, 1, 1) * n).reshape(-1)

    def own(states: torch.Tensor) -> torch.Tensor:
        rows = states.transpose(1, 2).reshape(b * n, h * d)[flat]  # (batch * length * k, heads * size)
        return rows.reshape(b, n, -1, h, d).permute(0, 3, 1, 2, 4)  # (batch, heads, length, k, size)

    key_own, value_own = own(key), own(value)
    scores_own = (query.unsqueeze(3) * key_own).sum(-1) * scaling + partner_mask.unsqueeze(1)
    weights = torch.softmax(torch.cat([scores_text, scores_own], dim=-1), dim=-1)
    if dropout:
        weights = torch.nn.functional.dropout(weights, p=dropout, training=True)
    out = torch.matmul(weights[..., :text], value_text) + (weights[..., text:].unsqueeze(-1) * value_own).sum(3)
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make :data:`ATTENTION` a valid ``attn_implementation`` (idempotent).

    Example:
        >>> register()
        >>> from transformers import AttentionInterface
        >>> ATTENTION in AttentionInterface()
        True
    """
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, levitated_attention)


def use_levitated_attention(encoder) -> bool:
    """Switch ``encoder`` (a transformers model) to :data:`ATTENTION`; False, and unchanged, where its
    attention does not dispatch through ``AttentionInterface`` (it then keeps the dense mask).

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> use_levitated_attention(BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                                              intermediate_size=8, vocab_size=10)))
        True
    """
    register()
    if not hasattr(encoder, "set_attn_implementation"):
        return False
    before = encoder.config._attn_implementation
    try:
        encoder.set_attn_implementation(ATTENTION)
    except (ValueError, NotImplementedError, TypeError):
        return False
    if encoder.config._attn_implementation != ATTENTION:
        encoder.set_attn_implementation(before)
        return False
    return True


def sparse_inputs(groups: Sequence[Sequence[int]], width: int, hide: float
                  ) -> dict[str, torch.Tensor]:
    """The mask inputs of :func:`levitated_attention` for a batch of packed rows.

    ``groups``: per row, per token, -1 for text (the row's first tokens), else the job it
    belongs to (``RelationEncoder.pack``); rows are padded to ``width``. A text query sees the
    text only; a padding query sees the text and itself (its state is never read, and a query
    that sees nothing would make a NaN).

    Example:
        >>> out = sparse_inputs([[-1, -1, 0, 0, 1], [-1, 0, 0]], 5, -1e9)
        >>> out["attention_mask"][:, 0, 0].tolist()
        [[0.0, 0.0], [0.0, -1000000000.0]]
        >>> out["partners"][0].tolist()
        [[0, 0], [0, 0], [2, 3], [2, 3], [4, 4]]
        >>> out["partners"][1, 3:].tolist(), out["partner_mask"][1, 3:].tolist()
        ([[3, 3], [4, 4]], [[0.0, -1000000000.0], [0.0, -1000000000.0]])
    """
    text = max((sum(1 for g in row if g == -1) for row in groups), default=0)
    members: list[dict[int, list[int]]] = []
    for row in groups:
        jobs: dict[int, list[int]] = {}
        for p, g in enumerate(row):
            if g >= 0:
                jobs.setdefault(g, []).append(p)
        members.append(jobs)
    k = max((len(m) for jobs in members for m in jobs.values()), default=1)
    mask = torch.full((len(groups), 1, 1, max(text, 1)), hide)
    partners = torch.zeros((len(groups), width, k), dtype=torch.long)
    pmask = torch.full((len(groups), width, k), hide)
    for i, (row, jobs) in enumerate(zip(groups, members)):
        n_text = sum(1 for g in row if g == -1)
        mask[i, 0, 0, :n_text] = 0.0
        for p in range(len(row), width):  # padding: itself only
            partners[i, p] = p
            pmask[i, p, 0] = 0.0
        for m in jobs.values():
            for p in m:
                partners[i, p, : len(m)] = torch.tensor(m)
                partners[i, p, len(m):] = m[0]
                pmask[i, p, : len(m)] = 0.0
    return {"attention_mask": mask, "partners": partners, "partner_mask": pmask}


def relation_batches(predictor, texts: Sequence[str], batch_size: int = 8) -> list[tuple[dict, dict]]:
    """The relation encoder's batches for ``texts`` as the Predictor makes them (its own entities,
    rows longest first): per batch the dense collator's tensors and :func:`sparse_inputs`."""
    rx = predictor.relation_model
    rows = []
    # The entity pass alone: the relations it would add are not needed to build their inputs.
    for text, found in zip(texts, predictor.ner(texts, batch_size=batch_size)):
        spans = [span for span, _ in found.spans]
        for window, jobs in rx.encoder.jobs(rx.encoder.prepare(text), spans):
            rows += rx.encoder.pack(window, jobs)
    rows.sort(key=lambda r: -len(r["input_ids"]))
    out = []
    for i in range(0, len(rows), batch_size):
        group = rows[i : i + batch_size]
        dense = rx._collate(group)
        dense["lengths"] = [len(r["input_ids"]) for r in group]
        dense["text_tokens"] = sum(r["groups"].count(-1) for r in group)
        out.append((dense, sparse_inputs([r["groups"] for r in group], dense["input_ids"].shape[1],
                                         torch.finfo(torch.float).min)))
    return out


def dense_args(dense: dict) -> tuple[torch.Tensor, ...]:
    ids = dense["input_ids"]
    return ids, dense["attention_mask"], dense["position_ids"], torch.zeros_like(ids)


def sparse_args(dense: dict, sparse: dict) -> tuple[torch.Tensor, ...]:
    ids = dense["input_ids"]
    return ids, sparse["attention_mask"], dense["position_ids"], torch.zeros_like(ids), sparse["partners"], \
        sparse["partner_mask"]


def max_difference(encoder_dense, encoder_sparse, batches) -> float:
    """Largest absolute difference of the two encoders' states over every real token."""
    worst = 0.0
    with torch.inference_mode():
        for dense, sparse in batches:
            a = encoder_dense(**dict(zip(INPUTS, dense_args(dense)))).last_hidden_state
            b = encoder_sparse(**dict(zip(INPUTS, sparse_args(dense, sparse)))).last_hidden_state
            for i, n in enumerate(dense["lengths"]):
                worst = max(worst, float((a[i, :n] - b[i, :n]).abs().max()))
    return worst


def export_sparse(encoder, folder: Path, batches) -> tuple[Path, Path]:
    """The sparse encoder exported to ONNX (fp32) and quantized as the shipped int8 export is."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from conflict_ie.runtime import _Output

    dense, sparse = batches[-1]
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 3: "text"},
            "position_ids": {0: "batch", 1: "length"}, "token_type_ids": {0: "batch", 1: "length"},
            "partners": {0: "batch", 1: "length", 2: "job"}, "partner_mask": {0: "batch", 1: "length", 2: "job"},
            "output": {0: "batch", 1: "length"}}
    fp32, int8 = folder / "sparse-fp32.onnx", folder / "sparse-int8.onnx"
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's hint about pre-processing, as in conflict_ie.runtime
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Output(copy.deepcopy(encoder).float().eval(), "last_hidden_state", INPUTS),
                          sparse_args(dense, sparse), str(fp32), input_names=list(INPUTS), output_names=["output"],
                          opset_version=17, dynamo=False, dynamic_axes=axes)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    root.setLevel(level)
    return fp32, int8


def session(path: Path, profile: Path | None = None):
    """An ONNX Runtime session as the shipped runner makes one; ``profile``: where its profile goes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile / "ort-profile")  # not the working folder
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feed(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> dict[str, Any]:
    return {n: t.numpy() for n, t in zip(names, tensors)}


def operator_times(path: Path, names: Sequence[str], calls, folder: Path) -> dict[str, float]:
    """Milliseconds per ONNX operator type over ``calls`` (lists of input tensors), from ORT's profiler
    (its file is written in ``folder``)."""
    s = session(path, profile=folder)
    for tensors in calls:
        s.run(None, feed(names, tensors))
    events = json.loads(Path(s.end_profiling()).read_text())
    out: dict[str, float] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            out[e["args"]["op_name"]] += e["dur"] / 1000
    return dict(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "runs" / "demo"), help="a run folder (default runs/demo)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds of each way, interleaved")
    ap.add_argument("--limit", type=int, default=0, help="only the first N texts (0: all; for a quick check)")
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime side")
    args = ap.parse_args(argv)
    import bench_predict

    from conflict_ie.predictor import Predictor
    from conflict_ie.runtime import onnx_file

    torch.set_num_threads(2)
    texts = bench_predict.texts()
    texts = texts[: args.limit] if args.limit else texts
    predictor = Predictor.from_pretrained(args.model)
    batches = relation_batches(predictor, texts)
    dense_encoder = predictor.relation_model.model.encoder.eval()
    sparse_encoder = copy.deepcopy(dense_encoder)
    if not use_levitated_attention(sparse_encoder):
        print(f"the relation encoder ({type(dense_encoder).__name__}) does not dispatch its attention "
              "through transformers' AttentionInterface", file=sys.stderr)
        return 2
    tokens = sum(sum(d["lengths"]) for d, _ in batches)
    text = sum(d["text_tokens"] for d, _ in batches)
    print(f"{len(texts)} texts, {len(batches)} relation batches of up to 8 rows, {tokens} tokens: {text} of text, "
          f"{tokens - text} markers (widest row {batches[0][0]['input_ids'].shape[1]})")
    worst = max_difference(dense_encoder, sparse_encoder, batches)
    print(f"largest state difference, dense mask vs sparse attention (torch fp32): {worst:.2e}")
    if worst > 1e-3:
        print("the two ways disagree: the sparse attention is wrong", file=sys.stderr)
        return 1

    sides: dict[str, Any] = {
        "torch fp32, dense mask (SDPA; shipped)": lambda: [dense_encoder(**dict(zip(INPUTS, dense_args(d))))
                                                         for d, _ in batches],
        "torch fp32, sparse attention": lambda: [sparse_encoder(**dict(zip(INPUTS, sparse_args(d, s))))
                                                 for d, s in batches],
    }
    ops: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_onnx:
            shipped = onnx_file(dense_encoder, "last_hidden_state", "int8", Path(args.model) / "onnx", "relations",
                                INPUTS[:4])
            _, sparse_int8 = export_sparse(sparse_encoder, Path(tmp), batches)
            dense_ort, sparse_ort = session(shipped), session(sparse_int8)
            sides["onnxruntime int8, dense mask (shipped)"] = lambda: [
                dense_ort.run(None, feed(INPUTS[:4], dense_args(d))) for d, _ in batches]
            sides["onnxruntime int8, sparse attention"] = lambda: [
                sparse_ort.run(None, feed(INPUTS, sparse_args(d, s))) for d, s in batches]
            ops["shipped int8 export (dense mask)"] = operator_times(shipped, INPUTS[:4],
                                                                     [dense_args(d) for d, _ in batches], Path(tmp))
            ops["sparse int8 export"] = operator_times(sparse_int8, INPUTS, [sparse_args(d, s) for d, s in batches],
                                                       Path(tmp))
        best = {name: float("inf") for name in sides}
        with torch.inference_mode():
            for r in range(args.rounds):
                for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
                    start = time.perf_counter()
                    sides[name]()
                    best[name] = min(best[name], time.perf_counter() - start)
    print(f"\nrelation encoder over every batch, best of {args.rounds} interleaved rounds, 2 threads:")
    for name, seconds in best.items():
        print(f"  {name:42s} {seconds:6.2f} s")
    for side, times in ops.items():
        total = sum(times.values())
        # The attention's own kernels: its two batched products (ORT fuses the scaling into one of
        # them: FusedMatMul) and the softmax; the mask's Add is counted with the other Adds (biases).
        attention = sum(times.get(k, 0.0) for k in ("FusedMatMul", "MatMul", "Softmax"))
        print(f"\n{side}, by operator (ORT profiler, one pass over the batches; {total / 1000:.2f} s of kernels):")
        for name, ms in sorted(times.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {name:28s} {ms:8.1f} ms  {ms / total:6.1%}")
        print(f"  attention products and softmax: {attention / total:.1%} of the kernel time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
