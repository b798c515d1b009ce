"""Pretrain several encoder sizes at once from one corpus pack (one process each, sharing a GPU).

    python scripts/pretrain_sizes.py PACK OUTDIR --minutes 6 [--device cuda] [--sizes S:2x96x192 L:4x256x1024]

Each size NAME:LAYERSxHIDDENxFFN writes ``OUTDIR/base-NAME`` (``qa pretrain --from-pack``, see
``qa.model.pretrain``) and ``OUTDIR/base-NAME.log``. The pack comes from ``qa pretrain ... --pack PACK``; training
from it needs only torch, transformers and numpy (what a bare GPU machine has). This is how ``models/base`` was
built (``docs/corpus.md``).
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(pack: str, out: str, layers: int, hidden: int, ffn: int, minutes: float | None, batch: int, lr: float,
        device: str, steps: int = 200_000, init_from: str | None = None) -> None:
    from qa.model.pretrain import PretrainArgs, pretrain
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    args = PretrainArgs(out=out, from_pack=pack, layers=layers, hidden=hidden, heads=4, intermediate=ffn,
                        minutes=minutes, steps=steps, init_from=init_from, batch_size=batch, lr=lr, device=device,
                        eval_every=2000, save_every=10**9)
    info = pretrain(args)
    print(json.dumps({"out": out, "steps": info["steps"], "heldout": info["heldout"],
                      "step_ms": info["step_ms_median"], "params": info["model"]["params"]}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pack")
    ap.add_argument("outdir")
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sizes", nargs="+", default=["S:2x96x192", "M:3x128x512", "L:4x256x1024"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", nargs="+", default=None, help="NAME=STEPS: a fixed step count (no time budget)")
    ap.add_argument("--init-from", default=None, help="Continue from DIR/base-NAME of an earlier run")
    ap.add_argument("--one", nargs=6, help=argparse.SUPPRESS)   # internal: OUT LAYERS HIDDEN FFN STEPS INIT
    a = ap.parse_args()
    if a.one:
        out, layers, hidden, ffn, steps, init = a.one
        one(a.pack, out, int(layers), int(hidden), int(ffn), a.minutes if steps == "0" else None, a.batch,
            a.lr * (0.7 if int(hidden) >= 256 else 1.0), a.device, int(steps) or 200_000,
            None if init == "-" else init)
        return
    Path(a.outdir).mkdir(parents=True, exist_ok=True)
    procs = []
    for spec in a.sizes:
        name, dims = spec.split(":")
        layers, hidden, ffn = dims.split("x")
        steps = dict(x.split("=") for x in a.steps or []).get(name, "0")
        init = str(Path(a.init_from) / f"base-{name}") if a.init_from else "-"
        out = str(Path(a.outdir) / f"base-{name}")
        log = open(Path(a.outdir) / f"base-{name}.log", "w")
        procs.append(subprocess.Popen([sys.executable, __file__, a.pack, a.outdir, "--minutes", str(a.minutes),
                                       "--device", a.device, "--batch", str(a.batch), "--lr", str(a.lr),
                                       "--one", out, layers, hidden, ffn, steps, init], stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in procs]
    print("exit codes", dict(zip(a.sizes, codes)))
    sys.exit(max(codes))


if __name__ == "__main__":
    main()
