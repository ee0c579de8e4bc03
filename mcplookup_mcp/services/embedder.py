"""Sentence embeddings: a MiniLM-class BERT encoder run by numpy over the model's own weights.

The model directory is sentence-transformers' layout (config.json, tokenizer.json, model.safetensors,
1_Pooling/config.json). The forward pass is BERT's: embeddings + LayerNorm, then per layer self-attention
and a GELU feed-forward block, each with a residual and LayerNorm; then mean pooling over the real tokens
and L2 normalisation, as sentence-transformers does for all-MiniLM-L6-v2. Torch is not needed: the
weights are memory-mapped float32 arrays (shared by every worker through the page cache), and one
question costs a few milliseconds on one core (docs/discovery.md has the figures).

numpy and tokenizers come with the `semantic` extra; without them, or without a model directory,
`load_embedder` says why and search stays lexical.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Matrix = NDArray[np.float32]
else:
    Matrix = Any

# Longest input in tokens: sentence-transformers' max_seq_length for this model.
DEFAULT_MAX_TOKENS = 256
# Texts per forward pass when embedding stored servers (sorted by length first, so padding wastes
# little). Attention holds batch x 12 x tokens^2 floats: with 32 texts of 256 tokens a process peaked at
# 328 MiB, with 8 at 242 MiB, for 8% more time.
BATCH = 8
QUERY_CACHE = 2048


class ModelUnavailable(RuntimeError):
    """The embedding model cannot be loaded."""


class Embedder:
    """One loaded model. `embed` is thread-safe (numpy releases the GIL in its matrix products)."""

    def __init__(self, directory: Path) -> None:
        # One BLAS thread: a question is a small product, and the cores serve requests side by side; with
        # OpenBLAS's default of a thread per core one question took 150 ms instead of 13 on a busy machine.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            import numpy as np
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(
                f"the semantic extra is not installed ({exc.name} is missing): "
                "pip install 'mcplookup-mcp[semantic]'"
            ) from None
        self._np = np
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            pooling = _pooling(directory)
            self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            weights = _read_safetensors(directory / "model.safetensors")
        except Exception as exc:  # tokenizers raises its own exceptions: any failure means no model
            raise ModelUnavailable(f"the model in {directory} cannot be read: {exc}") from None
        if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
            raise ModelUnavailable(f"{directory} is not a BERT model with mean pooling")
        self.dimensions = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._layers = int(config["num_hidden_layers"])
        max_tokens = min(_max_seq_length(directory), int(config["max_position_embeddings"]))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)
        # The linear layers' weights transposed once into contiguous (in, out) arrays (42 MB for
        # MiniLM-L6): a product with the transposed memory map ran 2-3 times slower. The word embeddings
        # (47 MB) stay mapped: a question reads a few of their rows.
        # Plain arrays, not memory-map views: numpy's memmap subclass made every operation on them slower.
        self._w = {
            name: value
            if name == "embeddings.word_embeddings.weight"
            else np.ascontiguousarray(value.T)
            if name.endswith(".weight") and "LayerNorm" not in name and "embeddings." not in name
            else np.array(value)
            for name, value in weights.items()
        }
        # Named by its shape and weights, not its folder: the same model extracted elsewhere is the same.
        self.name = f"bert-{self._layers}x{self.dimensions}@{_digest(directory)}"
        self._cache: OrderedDict[str, Matrix] = OrderedDict()
        self._cache_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        """One unit vector (float32, `dimensions` long) per text, in order."""
        np = self._np
        out: Matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            longest = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), longest), dtype=np.int64)
            mask = np.zeros((len(chunk), longest), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out

    def embed_query(self, text: str) -> Matrix:
        """A question's vector, kept in a bounded LRU cache (questions repeat)."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector: Matrix = self.embed([text])[0]
        vector.setflags(write=False)
        with self._cache_lock:
            self._cache[text] = vector
            while len(self._cache) > QUERY_CACHE:
                self._cache.popitem(last=False)
        return vector

    def _forward(self, ids: Matrix, mask: Matrix) -> Matrix:
        np, w = self._np, self._w
        batch, length = ids.shape
        x = (
            np.asarray(w["embeddings.word_embeddings.weight"][ids])
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        heads, size = self._heads, self.dimensions // self._heads
        # Padding takes no attention: a large negative score before the softmax.
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(size))
        for layer in range(self._layers):
            p = f"encoder.layer.{layer}."

            def split(t: Matrix) -> Matrix:
                return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

            q = split(self._linear(x, p + "attention.self.query"))
            k = split(self._linear(x, p + "attention.self.key"))
            v = split(self._linear(x, p + "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dimensions)
            x = self._norm(
                x + self._linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm"
            )
            hidden = _gelu(np, self._linear(x, p + "intermediate.dense"))
            x = self._norm(x + self._linear(hidden, p + "output.dense"), p + "output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        result: Matrix = (pooled / norms).astype(np.float32)
        return result

    def _linear(self, x: Matrix, name: str) -> Matrix:
        # A (batch * tokens, in) matrix: one BLAS product, not one per text of the batch.
        weight = self._w[name + ".weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight + self._w[name + ".bias"]
        result: Matrix = flat.reshape(*x.shape[:-1], weight.shape[1])
        return result

    def _norm(self, x: Matrix, name: str) -> Matrix:
        np = self._np
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        result: Matrix = (x - mean) / np.sqrt(var + self._eps) * self._w[name + ".weight"] + self._w[
            name + ".bias"
        ]
        return result


def load_embedder(directory: str | None) -> tuple[Embedder | None, str]:
    """The embedder for MCPLOOKUP_EMBEDDING_MODEL, or None and the reason search is lexical."""
    if not directory:
        return None, "MCPLOOKUP_EMBEDDING_MODEL is not set"
    if not (Path(directory) / "config.json").is_file():
        return None, (
            f"MCPLOOKUP_EMBEDDING_MODEL={directory} holds no sentence-transformers model (no config.json); "
            "extract one with scripts/extract_model.py"
        )
    try:
        return Embedder(Path(directory)), "loaded"
    except ModelUnavailable as exc:
        return None, str(exc)


def _gelu(np: Any, x: Matrix) -> Matrix:
    """BERT's exact GELU, x * Φ(x), with erf from Abramowitz and Stegun 7.1.26 (error below 1.5e-7)."""
    z = np.abs(x) * np.float32(1 / math.sqrt(2))
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    result: Matrix = (0.5 * x * (1.0 + np.sign(x) * erf)).astype(np.float32)
    return result


def _read_safetensors(path: Path) -> dict[str, Matrix]:
    """The float32 tensors of a safetensors file, memory-mapped read-only (the format is a JSON header of
    names, dtypes, shapes and byte offsets, then the raw little-endian data)."""
    import numpy as np

    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    tensors: dict[str, Matrix] = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = data[begin:end].view("<f4").reshape(entry["shape"])
    return tensors


def _pooling(directory: Path) -> dict[str, Any]:
    path = directory / "1_Pooling" / "config.json"
    pooling: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return pooling


def _max_seq_length(directory: Path) -> int:
    path = directory / "sentence_bert_config.json"
    if path.is_file():
        return int(json.loads(path.read_text(encoding="utf-8")).get("max_seq_length", DEFAULT_MAX_TOKENS))
    return DEFAULT_MAX_TOKENS


def _digest(directory: Path) -> str:
    """A short, stable name for these weights: a model change re-embeds every server."""
    import hashlib

    path = directory / "model.safetensors"
    stat = path.stat()
    with path.open("rb") as f:
        head = f.read(1 << 16)
    return hashlib.sha256(head + str(stat.st_size).encode()).hexdigest()[:12]
