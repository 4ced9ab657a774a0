"""Google Colab: the "Open in Colab" badge and the set-up cell that starts every notebook.

The set-up cell runs *before* mmcourse is installed, so it cannot import this module: it is
plain Python text, made here from the repository URL in :mod:`mmcourse.course` and stamped
into every notebook by ``tools/notebooks.py`` (``tests/test_colab.py`` runs it with a fake
``google.colab`` module; ``tools/hygiene.py`` fails on a stale copy).

In Colab the cell pip-installs mmcourse from the repository with a constraints file that
pins the torch, torchvision and torchaudio Colab already has, so pip can never replace
Colab's CUDA build of torch (mmcourse's own requirements are loose: ``torch>=2.2``).
Anywhere else it does nothing. Datasets are not fetched by the cell: each loader in
:mod:`mmcourse.data` downloads and verifies what a chapter uses on first use.
"""

from __future__ import annotations

import sys

from mmcourse.course import BRANCH, REPO_URL, colab_url

# Colab's preinstalled packages that pip must keep as they are.
KEEP = ("torch", "torchvision", "torchaudio")
CONSTRAINTS_NAME = "mmcourse-colab-constraints.txt"  # written to tempfile.gettempdir()
BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"


def in_colab() -> bool:
    """True inside a Google Colab kernel (the ``google.colab`` module is loaded there)."""
    return "google.colab" in sys.modules


def requirement(repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The pip requirement that installs mmcourse from the repository, with the ``deploy`` extra
    (chapter 12's ONNX Runtime and FastAPI) and the ``projects`` extra (chapters 09 and 11: the
    tweets, the Emoji Sentiment Ranking, pocketsphinx, espeak-ng, jiwer), which Colab does not preinstall."""
    return f"mmcourse[deploy,projects] @ git+{repo_url}@{branch}"


def badge_markdown(stem: str) -> str:
    """The first cell of notebook ``stem``: an "Open in Colab" badge linking to it."""
    return f"[![Open In Colab]({BADGE_SVG})]({colab_url(stem)})"


_SETUP = '''\
# Set-up. In Google Colab: install the course package from its repository, keeping Colab's
# own torch, torchvision and torchaudio (pinned, so pip cannot replace them). Elsewhere:
# nothing to do (`make setup` installed everything). Datasets download on first use.
# (Stamped by tools/notebooks.py from mmcourse/colab.py: edit it there, not here.)
import sys

if "google.colab" in sys.modules:
    import importlib
    import importlib.metadata
    import importlib.util
    import os
    import subprocess
    import tempfile

    if importlib.util.find_spec("mmcourse") is None:
        keep = [f"{p}=={importlib.metadata.version(p)}"
                for p in {KEEP} if importlib.util.find_spec(p)]
        constraints = os.path.join(tempfile.gettempdir(), "{CONSTRAINTS}")
        with open(constraints, "w") as f:
            f.write("\\n".join(keep) + "\\n")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", constraints,
                        "{REQUIREMENT}"], check=True)
        importlib.invalidate_caches()  # so that `import mmcourse` finds it in this kernel
        print("Installed mmcourse; kept", ", ".join(keep))
'''


def setup_cell_source(repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The set-up cell's code (self-contained: it runs before mmcourse is installed)."""
    keep = "(" + ", ".join(f'"{p}"' for p in KEEP) + ")"
    return (
        _SETUP.replace("{KEEP}", keep)
        .replace("{CONSTRAINTS}", CONSTRAINTS_NAME)
        .replace("{REQUIREMENT}", requirement(repo_url, branch))
        .rstrip("\n")
    )
