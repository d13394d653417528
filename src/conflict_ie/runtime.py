"""How a model's forward pass runs: numeric precision and backend.

A runner wraps one encoder-style model (``input_ids``, ``attention_mask`` in; one tensor
out: the token-classification logits, or the encoder's last hidden states) and returns
float32 torch tensors whatever runs underneath, so that decoding never changes.

=============  ===========================  ========================================
backend        precision                    how
=============  ===========================  ========================================
torch          fp32                         the model as trained
torch          bf16                         weights cast to bfloat16 (fast on CPUs with AVX512-BF16 or AMX)
torch          int8                         ``torch.ao`` dynamic quantization of the Linear layers, per channel
torch-compile  fp32, bf16                   as ``torch``, compiled by ``torch.compile`` (inductor, weights frozen)
onnxruntime    fp32                         exported to ONNX with eager attention, run by ONNX Runtime
onnxruntime    int8                         that export, weights quantized per channel by ``onnxruntime.quantization``
=============  ===========================  ========================================

``torch-compile`` compiles each model once, when it is loaded, for any batch size and length
(``dynamic=True``): about 15-20 s a model on 2 cores, and it needs a C++ compiler. It then runs
the same float32 (or bfloat16) arithmetic in fused kernels, 1.1-1.3x faster than ``torch`` on
this project's 2-core CPU (``scripts/bench_predict.py``).

ONNX files are exported once and cached in an ``onnx/`` folder next to the model (or, when
that folder cannot be written, in the user's cache), keyed by a hash of the weights, and
reused by every later load. Eager attention is used for the export because ONNX Runtime fuses
nothing under SDPA's exported graph (``../shared/spec/verified-facts.md``).

Example:
    >>> check_runtime("bf16", "torch")
    >>> check_runtime("bf16", "onnxruntime")
    Traceback (most recent call last):
    ...
    conflict_ie.errors.ConfigError: precision 'bf16' is not available with backend 'onnxruntime'; choose one of: torch/fp32, torch/bf16, torch/int8, torch-compile/fp32, torch-compile/bf16, onnxruntime/fp32, onnxruntime/int8
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from conflict_ie.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "int8")
BACKENDS = ("torch", "torch-compile", "onnxruntime")
SUPPORTED = (("torch", "fp32"), ("torch", "bf16"), ("torch", "int8"),
             ("torch-compile", "fp32"), ("torch-compile", "bf16"),
             ("onnxruntime", "fp32"), ("onnxruntime", "int8"))

#: How int8 weights are quantized (recorded by ``extract``'s manifest: a resumed table must not mix
#: schemes). Before this scheme, int8 used one scale per weight matrix ("per-tensor").
INT8_WEIGHTS = "per-channel"

#: ``runner(*inputs) -> float32 tensor``, the inputs in the order of ``make_runner``'s ``inputs``.
Runner = Callable[..., torch.Tensor]

#: Held while a torch-compile runner patches inductor's settings (see ``_compiled``).
_COMPILE_PATCH = threading.RLock()


def softmax(logits: torch.Tensor) -> np.ndarray:
    """Probabilities over the last axis of a runner's logits, as a float32 numpy array.

    Computed by numpy on the calling thread rather than by ``torch.softmax``: after an ONNX
    Runtime pass its worker threads spin for a while, and a torch op that wakes torch's own
    OpenMP threads then competes with them for the cores. On 2 cores that made the softmax of
    one batch of logits cost about 5 ms, and entity prediction at ``onnxruntime``/``int8`` about
    18% slower (``scripts/bench_softmax.py``, ``docs/results/bench-softmax.txt``).

    Example:
        >>> softmax(torch.tensor([[0.0, 0.0], [0.0, 100.0]])).round(3).tolist()
        [[0.5, 0.5], [0.0, 1.0]]
    """
    x = logits.detach().float().cpu().numpy()
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def sigmoid(logits: torch.Tensor) -> np.ndarray:
    """Independent probabilities of a runner's logits, as a float32 numpy array (numpy, as :func:`softmax`).

    Example:
        >>> sigmoid(torch.tensor([0.0, 100.0, -100.0])).round(3).tolist()
        [0.5, 1.0, 0.0]
    """
    x = logits.detach().float().cpu().numpy()
    # exp of a large negative logit overflows to inf, which still gives the right limit (0) with a warning.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def add_runtime_arguments(parser) -> None:
    """``--precision`` / ``--backend`` on an ``argparse`` parser, for every command that predicts."""
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32 (default), bf16 (torch, torch-compile) or int8 (torch or onnxruntime)")
    parser.add_argument("--backend", default="torch", choices=BACKENDS,
                        help="torch (default), torch-compile (compiled at load, needs a C++ compiler) or "
                             "onnxruntime (the [onnx] extra; exports cached in RUN/onnx)")


def check_runtime(precision: str, backend: str) -> None:
    """Raise a ``ConfigError`` naming the alternatives unless ``backend``/``precision`` is supported."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if (backend, precision) not in SUPPORTED:
        choices = ", ".join(f"{b}/{p}" for b, p in SUPPORTED)
        raise ConfigError(f"precision {precision!r} is not available with backend {backend!r}; choose one of: {choices}")
    if backend == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ConfigError("backend 'onnxruntime' needs the [onnx] extra: pip install 'conflict-ie[onnx]'") from exc


class _Output(nn.Module):
    """The model with positional inputs and one tensor out, for export and the torch runners alike."""

    def __init__(self, model: nn.Module, output: str, inputs: tuple[str, ...]):
        super().__init__()
        self.model, self.output, self.inputs = model, output, inputs

    def forward(self, *tensors):
        return getattr(self.model(**dict(zip(self.inputs, tensors))), self.output)


def _examples(inputs: tuple[str, ...]) -> tuple[tuple[torch.Tensor, ...], dict[str, dict[int, str]]]:
    """Example tensors for an export, and their dynamic axes (a 4-D mask is (batch, 1, query, key))."""
    tensors, axes = [], {}
    for name in inputs:
        if name == "attention_mask" and "position_ids" in inputs:  # levitated markers: a 4-D additive mask
            tensors.append(torch.zeros((2, 1, 8, 8)))
            axes[name] = {0: "batch", 2: "length", 3: "length"}
        else:
            tensors.append(torch.ones((2, 8), dtype=torch.long) if name != "position_ids"
                           else torch.arange(8).repeat(2, 1))
            axes[name] = {0: "batch", 1: "length"}
    return tuple(tensors), axes


def _weights_key(model: nn.Module) -> str:
    """A hash of the model's weights and config: a changed model never reuses a stale export."""
    h = hashlib.sha256(model.config.to_json_string().encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes()[:4096])
        h.update(str(tuple(tensor.shape)).encode())
    return h.hexdigest()[:16]


def _cache_dir(preferred: Path | None) -> Path:
    if preferred is not None:
        try:
            preferred.mkdir(parents=True, exist_ok=True)
            probe = preferred / ".write-test"
            probe.write_text("")
            probe.unlink()
            return preferred
        except OSError:
            pass  # a read-only run folder (a hub cache, a shared drive): fall back to the user's cache
    fallback = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conflict_ie" / "onnx"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def export_onnx(model: nn.Module, output: str, path: Path,
                inputs: tuple[str, ...] = ("input_ids", "attention_mask")) -> Path:
    """Export ``model`` (eager attention, dynamic batch and length) to ``path``.

    Example:
        >>> # export_onnx(AutoModelForTokenClassification.from_pretrained(run), "logits", Path("ner.onnx"))
    """
    import copy

    eager = copy.deepcopy(model).float().eval()
    if hasattr(eager, "set_attn_implementation"):
        eager.set_attn_implementation("eager")
    tensors, axes = _examples(inputs)
    tmp = path.with_suffix(".tmp.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: one self-contained file, and dynamic axes without shape hints.
        torch.onnx.export(_Output(eager, output, inputs), tensors, str(tmp), input_names=list(inputs),
                          output_names=["output"], opset_version=17, dynamo=False,
                          dynamic_axes={**axes, "output": {0: "batch", 1: "length"}})
    tmp.replace(path)  # written whole or not at all: a killed export never leaves a half file to reuse
    return path


def onnx_file(model: nn.Module, output: str, precision: str, cache: Path | None, name: str,
              inputs: tuple[str, ...] = ("input_ids", "attention_mask")) -> Path:
    """The cached ONNX file of ``model`` at ``precision`` (exported, and quantized, on first use)."""
    folder = _cache_dir(cache)
    key = _weights_key(model)
    fp32 = folder / f"{name}-{key}-fp32.onnx"
    if not fp32.exists():
        export_onnx(model, output, fp32, inputs)
    if precision == "fp32":
        return fp32
    # Named by the quantization scheme too, so that an export made under an older scheme is not reused.
    int8 = folder / f"{name}-{key}-int8-{INT8_WEIGHTS}.onnx"
    if not int8.exists():
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_suffix(".tmp.onnx")
        # It logs a hint about pre-processing on the root logger; the export is measured as it is.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            # Per output channel: a scale per row of each weight matrix instead of one per matrix. On the
            # demo model it reproduced 91% of fp32's entities instead of 79% (docs/results/bench-predict.txt
            # and bench-predict-before-softmax.txt); speed: README, Speed.
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        tmp.replace(int8)
    (folder / "README.json").write_text(json.dumps(
        {"what": "ONNX exports made by conflict_ie.runtime; safe to delete, they are rebuilt on demand"}) + "\n")
    return int8


def quantize_int8(model: nn.Module) -> nn.Module:
    """``model`` with its Linear layers dynamically quantized to int8, one weight scale per output channel.

    Per output channel, as the ONNX Runtime export: on the demo model it kept 88% of fp32's
    entities instead of 78% with one scale per matrix (speed: README, *Speed*).

    Example:
        >>> quantize_int8(nn.Sequential(nn.Linear(4, 3)))[0].weight().qscheme()
        torch.per_channel_affine
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch marks its quantized tensor types deprecated in favour of torchao, which is another
        # dependency; the dynamic-quantized Linear still runs and is measured by scripts/bench_predict.py.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.float(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def make_runner(model: nn.Module, output: str, *, precision: str = "fp32", backend: str = "torch",
                cache: Path | None = None, name: str = "model",
                inputs: tuple[str, ...] = ("input_ids", "attention_mask")) -> Runner:
    """A forward function for ``model`` at ``precision`` on ``backend``; see the module's table.

    ``output`` names the attribute of the model's output to return (``"logits"``,
    ``"last_hidden_state"``); the runner takes ``inputs`` in that order (with ``position_ids``
    among them, ``attention_mask`` is a 4-D additive float mask). ``cache`` is where ONNX exports
    go (default: the user's cache).

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> m = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                          intermediate_size=8)).eval()
        >>> run = make_runner(m, "last_hidden_state", precision="bf16")
        >>> run(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 1, 1]])).dtype
        torch.float32
    """
    check_runtime(precision, backend)
    if backend == "onnxruntime":
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(onnx_file(model, output, precision, cache, name, inputs)), options,
                                       providers=["CPUExecutionProvider"])

        def run_onnx(*tensors):
            feed = {n: t.cpu().numpy().astype(np.float32 if t.is_floating_point() else np.int64)
                    for n, t in zip(inputs, tensors)}
            return torch.from_numpy(session.run(None, feed)[0]).float()

        return run_onnx
    module = model.eval()
    if precision == "bf16":
        module = module.to(torch.bfloat16)
    elif precision == "int8":
        module = quantize_int8(module)
    wrapped = _Output(module, output, inputs)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if backend == "torch-compile":
        wrapped = _compiled(wrapped)

    def run_torch(*tensors):
        # A float mask must be in the weights' type (SDPA refuses a float32 mask beside bf16 queries).
        tensors = tuple(t.to(dtype) if t.is_floating_point() else t for t in tensors)
        with torch.inference_mode():
            return wrapped(*tensors).float()

    if backend == "torch-compile":
        # Compiled now, not at the first text, so that a missing compiler is an error at load time.
        device = next(module.parameters()).device
        try:
            run_torch(*(t.to(device) for t in _examples(inputs)[0]))
        except Exception as exc:  # inductor raises many kinds (no compiler, no Python headers, unsupported op)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
            raise ConfigError(f"backend 'torch-compile' could not compile the model ({type(exc).__name__}: "
                              f"{first}); it needs a C++ compiler (g++) and the Python headers: use backend "
                              "'torch' or 'onnxruntime' instead") from exc
    return run_torch


def _compiled(module: nn.Module) -> Callable[..., torch.Tensor]:
    """``module`` compiled by inductor for any batch size and length (on its first call).

    Weights are frozen into the graph (inductor's ``freezing``), which lets it pre-pack them for
    the CPU's matrix kernels: most of the gain on this project's CPU. ``dynamic=True`` compiles one
    graph for every shape, but dynamo still specialises a dimension of size 1; a batch of one row
    is therefore run as two copies of it, so that one text never pays a second compilation.
    """
    import types

    import torch._inductor.config as inductor_config

    # Dynamo keeps a function's compiled graphs on its code object, at most
    # ``torch._dynamo.config.recompile_limit`` (8) of them, and every model wrapped in ``_Output``
    # shares one code object: the ninth model loaded in a process (a server that reloads after
    # retraining) would silently run uncompiled. A copy of the code object per model gives each
    # model its own cache.
    forward = type(module).forward
    own = types.FunctionType(forward.__code__.replace(), forward.__globals__, forward.__name__,
                             forward.__defaults__, forward.__closure__)
    compiled = torch.compile(types.MethodType(own, module), dynamic=True)

    def run(*tensors):
        if tensors[0].shape[0] == 1:
            tensors = tuple(torch.cat([t, t]) for t in tensors)
            return run(*tensors)[:1]
        # A tensor made outside inference mode carries another dispatch key than one made inside,
        # and dynamo would compile a second graph for it: callers may make theirs either way.
        tensors = tuple(t if t.is_inference() else t.clone() for t in tensors)
        # Set around every call, not globally: it is read when a graph is compiled, whichever call
        # that is. (``torch.compile(options={"freezing": True})`` measured 1.1x here, this 1.2-1.3x.)
        # The patch saves and restores a process-wide setting, so two threads (a server loading a
        # retrained model while it predicts) take turns, or one could restore the other's value.
        with _COMPILE_PATCH, inductor_config.patch(freezing=True):
            return compiled(*tensors)

    return run
