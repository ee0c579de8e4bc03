"""README's Layout section names files and directories that exist where it says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mcplookup_mcp"
NAMED = re.compile(r"`([\w./-]+(?:\.py|/))`")


def test_every_path_the_layout_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    rest = layout.find("\n## ", 4)
    layout = layout if rest < 0 else layout[:rest]
    assert len(NAMED.findall(layout)) > 25
    missing = []
    for item in re.split(r"\n- |\n\n", layout):
        # A layer's line ("- `core/` ... `settings.py`") names modules in that layer's directory.
        layer = re.match(r"`(\w+)/`", item)
        places = [PACKAGE / layer.group(1)] if layer else [PACKAGE, ROOT]
        for path in NAMED.findall(item):
            if not any((place / path).exists() for place in [*places, PACKAGE, ROOT]):
                missing.append(path)
    assert missing == []
