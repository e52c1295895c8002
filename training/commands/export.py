"""``magenta-live-train export``'s arguments (the work: ``training.export``)."""

from __future__ import annotations

import argparse
import os

from live.files import check_writable
from live.models.modelfile import load
from training.commands.train import VAE_RUN_FILE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export`` with the ``magenta-live-train`` command line."""
    p = subparsers.add_parser(
        "export",
        help="write a run's latest checkpoint as a live model file (.npz)",
        description="Write RUN_DIR's latest checkpoint as the model file magenta-live loads.",
    )
    p.add_argument("--run-dir", required=True, help="a directory trained by `magenta-live-train train`")
    p.add_argument("--output", required=True, help="model file to write, e.g. model.npz")
    p.add_argument("--trained-on", default="", help="what the model was trained on (recorded in the file)")
    p.add_argument("--float16", action="store_true",
                   help="store the weights at half precision: half the file; the engine computes in float32")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``export``, then load the file written back and describe it."""
    check_writable(args.output, "--output")
    if os.path.exists(os.path.join(args.run_dir, VAE_RUN_FILE)):
        from live.models.vae import load_vae
        from training.vae import export_vae  # TensorFlow loads here

        out = export_vae(args.run_dir, args.output, args.trained_on, float16=args.float16)
        vae = load_vae(out)
        print(f"wrote {out}: MusicVAE {vae.config.config_id}, z {vae.config.z_size}, encoder {vae.config.encoder_sizes}, "
              f"decoder {vae.config.decoder_sizes}, step {vae.config.source.get('steps')}, {os.path.getsize(out)} bytes")
        return 0
    from training.export import export  # TensorFlow loads here

    out = export(args.run_dir, args.output, args.trained_on, float16=args.float16)
    model = load(out)
    print(f"wrote {out}: {model!r}, step {model.config.source.get('steps')}, {os.path.getsize(out)} bytes")
    return 0
