#!/usr/bin/env python3
"""JPEG inputs and PIL's decodes of them for tests/model/image_test.cc.

Gemma3ImageProcessor opens images with PIL, so PIL's decode (libjpeg-turbo)
is the reference. Needs Debian's python3-numpy and python3-pil (only to
regenerate; the outputs are committed). From src.png (make_resize_refs.py) it
writes, each with <name>.npy (uint8 [h, w, c] as PIL decodes it):
  baseline420.jpg  quality 90, 4:2:0 chroma subsampling (the common camera/web form)
  baseline444.jpg  quality 95, no subsampling
  progressive.jpg  quality 85, progressive, 4:2:0
  gray.jpg         one channel
"""
import os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
src = Image.open(os.path.join(here, "src.png")).convert("RGB")
cases = {
    "baseline420": (src, dict(quality=90, subsampling=2)),
    "baseline444": (src, dict(quality=95, subsampling=0)),
    "progressive": (src, dict(quality=85, subsampling=2, progressive=True)),
    "gray": (src.convert("L"), dict(quality=90)),
}
for name, (img, opts) in cases.items():
    path = os.path.join(here, name + ".jpg")
    img.save(path, "JPEG", **opts)
    np.save(os.path.join(here, name + ".npy"), np.asarray(Image.open(path)))
