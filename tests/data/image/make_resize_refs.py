#!/usr/bin/env python3
"""Reference outputs of PIL's bilinear resize for tests/model/image_test.cc.

Needs Debian's python3-numpy and python3-pil (only to regenerate; the outputs
are committed). Writes src.png (a deterministic 8-bit RGB image with noise and
edges) and one <w>x<h>.npy (uint8 [h, w, 3]) per target size, from
PIL.Image.resize((w, h), Image.BILINEAR), which Gemma3ImageProcessor uses.
"""
import os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
h, w = 61, 97
y, x = np.mgrid[0:h, 0:w]
img = np.stack([(x * 7 + y * 3) % 256, (x * x + y * 11) % 256, np.where((x // 8 + y // 8) % 2 == 0, 230, 20)], -1)
img = np.clip(img + rng.integers(-20, 21, size=img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(here, "src.png"))
src = Image.open(os.path.join(here, "src.png")).convert("RGB")
for tw, th in [(32, 32), (40, 33), (97, 20), (150, 61), (120, 120)]:
    out = np.asarray(src.resize((tw, th), Image.BILINEAR))
    np.save(os.path.join(here, f"{tw}x{th}.npy"), out)
