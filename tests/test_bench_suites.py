"""Suite tables: the standard segments fit their sources; a folder of videos becomes a suite."""

from pathlib import Path

import numpy as np
import pytest

import vcodec
from benchmarks import clips


@pytest.mark.parametrize("spec", clips.STANDARD + clips.LONG, ids=lambda s: s.name)
def test_standard_segment_fits_its_source(spec):
    if spec.crop:
        assert spec.crop[2] % 8 == 0 and spec.crop[3] % 8 == 0
    try:
        path = clips.find_file(spec.file)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    clip = clips.get_clip(spec, max_frames=2)
    assert clip.rgb.shape[0] == 2 and clip.rgb.dtype == np.uint8
    assert clip.height % 8 == 0 and clip.width % 8 == 0
    assert clip.source["file"] in path


def test_folder_suite_and_centre_crop(tmp_path):
    import av

    path = tmp_path / "a.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 100, 68, "yuv420p"
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.full((68, 100, 3), 40 * i, np.uint8), format="rgb24")
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    (tmp_path / "notes.txt").write_text("not a video")
    name, specs = clips.resolve_suite(str(tmp_path))
    assert [s.name for s in specs] == ["a"]
    clip = clips.get_clip(specs[0], max_frames=3)
    assert clip.rgb.shape == (3, 64, 96, 3)
    assert clip.source["crop"] == [2, 2, 96, 64]


def test_unknown_suite_is_a_clear_error():
    with pytest.raises(ValueError, match="smoke, standard, long, a folder"):
        clips.resolve_suite("no-such-suite")


def test_segments_overlapping_training_frames_are_refused(tmp_path):
    import json

    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "sources": [{"name": "tree", "file": "tree.avi", "train_runs": [0, 9]}, {"name": "c", "file": "c.mp4"}],
                "corpus_keys": {"train/tree/000": [11, 8, 8, 3], "train/tree/001": [11, 8, 8, 3]},
            }
        )
    )
    assert clips.training_frames("tree.avi", str(manifest)) == set(range(0, 20))
    clips.check_not_training("tree.avi", 20, 17, str(manifest))  # after the runs: fine
    clips.check_not_training("c.mp4", 0, 33, str(manifest))  # held out whole
    with pytest.raises(clips.TrainingOverlapError, match="frames 15..19"):
        clips.check_not_training("tree.avi", 15, 17, str(manifest))


SHIPPED_MANIFEST = Path(vcodec.__file__).parent / "weights" / "default_manifest.json"


@pytest.mark.parametrize("manifest", [SHIPPED_MANIFEST, Path(clips.MANIFEST)], ids=["shipped-model", "data"])
def test_standard_suite_avoids_the_real_training_runs(manifest):
    """The shipped model's training manifest is committed, so this runs everywhere (CI has no data/); the current
    corpus's manifest is checked too where `make data` has run."""
    if not manifest.exists():
        pytest.skip(f"no {manifest} (make data)")
    for spec in clips.STANDARD + clips.LONG:
        assert clips.training_frames(spec.file, str(manifest)) is not None, f"{spec.file} not in {manifest}"
        clips.check_not_training(spec.file, spec.start, spec.frames, str(manifest))


def test_long_suite_is_native_resolution_and_at_least_96_frames():
    for spec in clips.LONG:
        assert spec.crop is None and spec.frames >= 96
