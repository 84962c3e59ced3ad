"""Writes images/*.pgm: three synthetic 40x40 8-bit pictures (a disc, a square ring,
diagonal stripes), so the example ships no third-party pictures."""

import math
from pathlib import Path

W = H = 40
HERE = Path(__file__).resolve().parent


def save(name: str, pixel) -> None:  # type: ignore[no-untyped-def]
    rows = [" ".join(str(pixel(x, y)) for x in range(W)) for y in range(H)]
    header = f"P2\n# {name}, made by make_images.py\n{W} {H}\n255\n"
    (HERE / "images" / f"{name}.pgm").write_text(header + "\n".join(rows) + "\n")


save("disc", lambda x, y: 230 if math.hypot(x - 20, y - 20) < 12 else 30)
save("ring", lambda x, y: 200 if 8 <= max(abs(x - 20), abs(y - 20)) <= 14 else 40)
save("stripes", lambda x, y: 220 if (x + y) // 6 % 2 else 50)
