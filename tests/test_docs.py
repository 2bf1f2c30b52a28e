"""The README's Python snippets run as written (with the shipped model, on a short clip named as they expect)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from vcodec.errors import VcodecWarning
from vcodec.io.synthetic import write_clip

ROOT = Path(__file__).resolve().parents[1]


def _snippets(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_has_snippets():
    assert _snippets(ROOT / "README.md")


@pytest.mark.parametrize("i", range(len(_snippets(ROOT / "README.md"))))
def test_readme_snippet_runs(i, tmp_path, monkeypatch, capsys):
    if not (ROOT / "vcodec" / "weights" / "default.pt").exists():
        pytest.skip("the shipped model is not in this checkout")
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "in.mp4", width=16, height=16, num_frames=2)
    code = _snippets(ROOT / "README.md")[i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        exec(compile(code, f"README.md snippet {i}", "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "out.vcb").exists() and (tmp_path / "out.mkv").exists()
    assert capsys.readouterr().out.strip() == "2 frames"
