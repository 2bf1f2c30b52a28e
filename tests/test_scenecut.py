"""Scene cuts: the detector, the chunk layout that starts a keyframe period at each cut, and a stream coded so."""

import io

import numpy as np
import pytest

import bitstream
from vcodec.coding import plan_chunks, scene_chunks
from vcodec.io.synthetic import pattern_frames
from vcodec.scenecut import scene_cuts
from vcodec.stream import chunk_plan


def other_shot(num_frames: int, height: int, width: int) -> np.ndarray:
    """A second shot for :func:`pattern_frames`: a dark, slowly panning stripe picture (another histogram)."""
    xx = np.arange(width)[None, :] + np.arange(num_frames)[:, None]  # (T, W)
    stripes = (40 + 30 * ((xx // 6) % 2)).astype(np.uint8)
    return np.broadcast_to(stripes[:, None, :, None], (num_frames, height, width, 3)).copy()


def two_shots(cut: int, total: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.concatenate([pattern_frames(cut, height, width), other_shot(total - cut, height, width)])


def test_finds_a_cut_and_not_motion_fades_or_stills():
    """A change of shot is a cut; a pan with a moving square, a slow fade, a still picture and the frames of the
    second shot are not (the detector also serves the diagnostics, which leave cuts out of flicker tables)."""
    pan = pattern_frames(17, 48, 64)
    assert scene_cuts(pan) == []
    assert scene_cuts(two_shots(9, 17)) == [9]
    assert scene_cuts(two_shots(1, 17)) == [1]  # found; whether it starts a period is the encoder's choice
    assert scene_cuts(two_shots(16, 17)) == []  # the last frame: nothing after it tells a cut from a flash
    picture = pattern_frames(1, 48, 64)[0].astype(np.float32)
    fade = np.stack([picture * (1 - i / 20) for i in range(17)]).astype(np.uint8)  # to black, 5% a frame
    assert scene_cuts(fade) == [] and scene_cuts(np.zeros((5, 8, 8, 3), np.uint8)) == []


def test_a_picture_inverted_is_a_cut_only_where_its_histogram_moves():
    """The histogram condition: a dark picture turned into its bright negative is a cut; a mid-grey still turned
    into its negative (the same histogram, one level off) is not, nor is the pattern's negative, whose histogram
    is nearly its own mirror image (every pixel changes, but not what the picture holds)."""
    grey = np.full((6, 16, 16, 3), 128, np.uint8)
    flipped = grey.copy()
    flipped[3:] = 255 - flipped[3:]
    assert scene_cuts(flipped) == []
    dark = (pattern_frames(10, 48, 64) * 0.4).astype(np.uint8)
    dark[5:] = 255 - dark[5:]
    assert scene_cuts(dark) == [5]
    mirrored = pattern_frames(10, 48, 64)
    mirrored[5:] = 255 - mirrored[5:]
    assert scene_cuts(mirrored) == []


def layout(chunks) -> list[tuple[int, int, bool]]:
    """(first frame, frames, continues) of each chunk."""
    out, pos = [], 0
    for frames, continues in chunks:
        out.append((pos, len(frames), continues))
        pos += len(frames)
    return out


@pytest.mark.parametrize("keyint", [17, 129, 40])
def test_without_cuts_the_layout_is_the_periodic_one(keyint):
    """No cut: scene_chunks gives plan_chunks's chunks, frame for frame, for any grouping and range."""
    frames = pattern_frames(75, 48, 64)
    groups = [frames[:10], frames[10:11], frames[11:60], frames[60:]]
    for first, count in ((0, None), (3, 50), (20, None)):
        got = list(scene_chunks(groups, lambda: chunk_plan(17, 4, keyint), first, count))
        want = list(plan_chunks(groups, chunk_plan(17, 4, keyint), first, count))
        assert layout(got) == layout(want)
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(got, want))


@pytest.mark.parametrize("keyint", [17, 28, 129])
@pytest.mark.parametrize("cut", [1, 3, 4, 5, 16, 17, 18, 21, 29, 33, 34, 40])
def test_a_cut_starts_a_keyframe_period(keyint, cut):
    """At a cut a keyframe chunk starts (also 1-3 frames after a periodic keyframe), the chunk before ends there (on
    a partial latent frame if it must: only a keyframe chunk follows one), and the layout after it is the periodic
    one started anew; the layout keeps the format's rules (FORMAT.md 4.2) and every frame, in order."""
    frames = two_shots(cut, 50)
    assert scene_cuts(frames) == [cut]
    chunks = list(scene_chunks([frames], lambda: chunk_plan(17, 4, keyint)))
    lay = layout(chunks)
    assert np.array_equal(np.concatenate([c for c, _ in chunks]), frames)
    assert all(1 <= n <= 17 for _, n, _ in lay) and not lay[0][2]
    for (_, n, cont), (_, _, next_cont) in zip(lay, lay[1:]):
        if next_cont:  # a continuing chunk follows a chunk that ends on a whole latent frame
            assert (n if cont else n - 1) % 4 == 0
    periodic = layout(plan_chunks([frames], chunk_plan(17, 4, keyint)))
    before = [c for c in periodic if c[0] < cut]
    before[-1] = (before[-1][0], cut - before[-1][0], before[-1][2])
    after = [(f + cut, n, c) for f, n, c in layout(plan_chunks([frames[cut:]], chunk_plan(17, 4, keyint)))]
    assert lay == before + after


def test_a_flash_of_two_frames_starts_two_periods_and_one_frame_none():
    """A 2-frame flash: the cut into it and the cut out of it each start a period (the shot after it starts clean);
    a one-frame flash is two changes in a row, neither a spike against the other: no cut, no new period."""
    frames = pattern_frames(40, 48, 64)
    frames[20:22] = 255
    assert scene_cuts(frames) == [20, 22]
    assert [f for f, _, c in layout(scene_chunks([frames], lambda: chunk_plan(17, 4, 129))) if not c] == [0, 20, 22]


def test_a_flash_is_no_cut():
    frames = pattern_frames(40, 48, 64)
    frames[20] = 255
    assert scene_cuts(frames) == []
    lay = layout(scene_chunks([frames], lambda: chunk_plan(17, 4, 129)))
    assert lay == layout(plan_chunks([frames], chunk_plan(17, 4, 129)))


def test_a_cut_out_of_a_fast_pan():
    """A histogram that jumps (another picture) is a cut even where the difference is under twice the shot's motion
    (a stripe pan moving 3 pixels a frame, 19 levels a frame, then a flat picture 36 levels away); the pan itself is
    not."""
    xx = np.arange(64)[None, :] + 3 * np.arange(30)[:, None]
    stripes = np.where((xx // 8) % 2 == 1, 160, 100).astype(np.uint8)
    pan = np.broadcast_to(stripes[:, None, :, None], (30, 48, 64, 3))
    flat = np.full((10, 48, 64, 3), 172, np.uint8)
    flat[..., 0] -= pattern_frames(10, 48, 64)[..., 0] // 32  # a little texture
    assert scene_cuts(pan) == [] and scene_cuts(np.concatenate([pan, flat])) == [30]


def test_a_stream_with_a_cut_decodes_and_says_where_its_keyframes_are():
    """compress with scene cuts (the default): the index has a keyframe chunk at the cut, the stream decodes to
    every frame, and info counts the period that started early; scenecut=False keeps the periodic layout."""
    import vcodec
    from vcodec.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    frames = two_shots(22, 40, 32, 32)
    periods = {}
    for scenecut in (True, False):
        data = vcodec.compress(frames, tokenizer=tok, scenecut=scenecut)
        assert vcodec.decompress(data, tokenizer=tok).shape == frames.shape
        with bitstream.VcbReader(io.BytesIO(data)) as r:
            periods[scenecut] = [e.first_frame for e in r.index() if not e.continues]
        assert vcodec.info(io.BytesIO(data))["scene_cut_keyframes"] == int(scenecut)
    assert periods == {True: [0, 22], False: [0]}


def test_scenecut_must_be_a_bool():
    import vcodec
    from vcodec.errors import ArgumentError

    with pytest.raises(ArgumentError, match="scenecut"):
        vcodec.compress(np.zeros((1, 8, 8, 3), np.uint8), scenecut="yes")


def write_ffv1(path, frames: np.ndarray, rate: int = 25) -> None:
    """``frames`` uint8 (T, H, W, 3) RGB as a lossless FFV1 .mkv."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=rate)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())


def test_cli_encode_scenecut_switch_and_info(tmp_path):
    """`vcodec encode` cuts at the new shot unless --no-scenecut; `vcodec info` says how keyframes were placed."""
    import json

    from click.testing import CliRunner

    from vcodec.cli import main
    from vcodec.testing import save_tokenizer, tiny_tokenizer

    model = save_tokenizer(tiny_tokenizer(window_frames=17), tmp_path / "tiny17.pt")
    write_ffv1(tmp_path / "in.mkv", two_shots(22, 40, 32, 32))
    keyframes, texts = {}, {}
    for flag in ("--scenecut", "--no-scenecut"):
        out = tmp_path / f"{flag[2:]}.vcb"
        r = CliRunner().invoke(main, ["encode", str(tmp_path / "in.mkv"), "-o", str(out), "--model", model, flag,
                                      "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["scenecut"] is (flag == "--scenecut")
        assert json.loads(r.stdout)["scene_cut_keyframes"] == (flag == "--scenecut")
        summary = CliRunner().invoke(main, ["encode", str(tmp_path / "in.mkv"), "-o", str(out), "-y", "--model", model,
                                            flag]).stderr
        assert ("keyframes at 1 scene cut" in summary) is (flag == "--scenecut")
        info = json.loads(CliRunner().invoke(main, ["info", str(out), "--json"]).stdout)
        keyframes[flag] = info["keyframe_chunks"]
        texts[flag] = CliRunner().invoke(main, ["info", str(out)]).stdout
    assert keyframes == {"--scenecut": 2, "--no-scenecut": 1}
    assert "2 keyframe chunks (every 129 frames; 1 of them at a scene cut)," in texts["--scenecut"]
    assert "1 keyframe chunk (every 129 frames)," in texts["--no-scenecut"]


def test_info_period_for_early_keyframes():
    """What `info` takes as a keyframe period when it counts periods that began early: keyint frames, or one window
    where the window is too short for continuing chunks (every chunk its own period, none of them a cut)."""
    from types import SimpleNamespace

    from vcodec.api import _keyframe_period
    from vcodec.stream import early_keyframes

    assert early_keyframes([0, 129, 150, 279], 129) == 1 and early_keyframes([], 129) == 0

    def header(keyint, window):
        return SimpleNamespace(extra={} if keyint is None else {"keyint": keyint}, window_frames=window,
                               temporal_factor=4)

    assert _keyframe_period(header(129, 17)) == 129 and _keyframe_period(header(17, 17)) == 17
    assert _keyframe_period(header(129, 1)) == 1 and _keyframe_period(header(129, 4)) == 4
    assert _keyframe_period(header(None, 17)) is None and _keyframe_period(header(True, 17)) is None
