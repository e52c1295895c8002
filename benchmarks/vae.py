"""MusicVAE speed: encoding and decoding one two-bar phrase (32 steps), batch 1 and 8.

    .venv/bin/python -m benchmarks.vae            # 200 repetitions each
    .venv/bin/python -m benchmarks.vae --quick    # 20
    .venv/bin/python -m benchmarks.vae --update benchmarks/RESULTS.md

The bundled MusicVAE (``live/models/bundled/vae.npz``) when it is there, and random weights at
Magenta's ``cat-mel_2bar_small`` sizes (encoder 512 each way, decoder 2 x 256, code 256). A live
answer needs one encoding and one decoding (a morph of N phrases: N decodings, or one batch of
N) inside the half step of look-ahead an answer has (62 ms at 120 BPM).
"""

from __future__ import annotations

import os
import platform
import time

from benchmarks import section_main

HEADING = "## MusicVAE: encode and decode a two-bar phrase"


def _times(fn, repeats: int) -> tuple[float, float]:
    import numpy as np

    fn()  # warm
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return float(np.median(out)) * 1e3, float(np.percentile(out, 99)) * 1e3


def run(quick: bool = False, log=print) -> str:
    import numpy as np

    from live.models.bundled import BUNDLED_DIR
    from live.models.vae import MusicVae, VaeConfig, expected_shapes, load_vae

    repeats = 20 if quick else 200
    models = []
    bundled = BUNDLED_DIR / "vae.npz"
    if bundled.exists():
        models.append(("bundled `vae`", load_vae(bundled)))
    rng = np.random.default_rng(0)
    config = VaeConfig()
    models.append(("cat-mel_2bar_small sizes, random weights",
                   MusicVae(config, {n: (rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)
                                     for n, s in expected_shapes(config).items()})))
    rows = []
    for name, vae in models:
        c = vae.config
        for batch in (1, 8):
            events = rng.integers(0, c.num_classes, (batch, c.steps))
            z = rng.standard_normal((batch, c.z_size)).astype(np.float32)
            enc = _times(lambda: vae.encode(events), repeats)
            dec = _times(lambda: vae.decode(z, 1.0, rng), repeats)
            log(f"vae {name} batch {batch}: encode {enc[0]:.2f} ms, decode {dec[0]:.2f} ms")
            rows.append(f"| {name} (encoder {c.encoder_sizes[0]} x 2, decoder {'x'.join(map(str, c.decoder_sizes))}, z {c.z_size}) "
                        f"| {batch} | {enc[0]:.2f} / {enc[1]:.2f} | {dec[0]:.2f} / {dec[1]:.2f} |")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        HEADING, "",
        f"`python -m benchmarks.vae{' --quick' if quick else ''}` on {when} ({platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load}); {repeats} repetitions, numpy in this process. Times in ms, median / p99.", "",
        "| model | batch | encode ms | decode ms (sampled, temperature 1) |", "|---|---|---|---|",
        *rows, "",
    ])


def main(argv: list[str] | None = None) -> int:
    return section_main(__doc__, HEADING, run, "20 repetitions", argv)


if __name__ == "__main__":
    raise SystemExit(main())
