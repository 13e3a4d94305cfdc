"""Reference fixtures made by REAL MXNet, in an isolated venv, for the MXNet->ONNX tests and benchmarks.

    from edgepose.converters.mxnet import fixtures
    root = fixtures.build(fixtures.fixtures_dir())     # a folder holding manifest.json
    python -m edgepose.converters.mxnet.fixtures [--force] [--out DIR]   (prints the folder)

Why a separate venv: MXNet 1.9.1 needs numpy < 2 (edgepose's venv has numpy 2), and edgepose must
never import MXNet. This module runs twice: first in edgepose's Python as the orchestrator, which
creates the venv and a cache directory, then inside the venv as the worker (this file run by path
with `python -I FILE --worker DIR`, stdlib and MXNet only: nothing of edgepose is imported there),
which uses MXNet/GluonCV to write:

  models/<name>-symbol.json, -0000.params, .npz   GluonCV models, random weights, non-trivial BatchNorm
  ops/<case>-symbol.json, -0000.params, .npz      one small graph per operator variant (OP_CASES)
  params/*.params + *.npz                          NDArray files in every format MXNet reads,
                                                  and what MXNet itself loaded from them (PARAMS_CASES)
  manifest.json                                    what was built, input shapes, timings

Each .npz holds `input__<name>` arrays and `output__<i>` arrays plus `output_names` (MXNet's
Symbol.list_outputs()). Nothing is downloaded except the pinned packages (pip, on first use: the
`network` marker in the tests): models are built with pretrained=False (GluonCV ships the pruned
variants' channel configs in the package).

The case names are listed here (MODELS, OP_CASES, PARAMS_CASES) so tests can be parametrized
without building anything; the worker fails if what it built differs from those lists.

The cache key is this file's sha256, so a changed builder rebuilds and CI reuses an unchanged one:
    $EDGEPOSE_MXNET_FIXTURES                   use this directory as is (must hold manifest.json)
    $EDGEPOSE_CACHE or ~/.cache/edgepose       cache root (mxnet-fixtures/<key>/, mxnet-venv-<key>/)
    $EDGEPOSE_MXNET_VENV                       use this venv instead of creating one
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Exact pins that resolve on Python 3.11 here. gluoncv is installed without its dependency list
# (it would pull opencv, pandas, matplotlib and numpy 2); its imports need only these.
PINS = ["mxnet==1.9.1", "numpy==1.23.5", "scipy==1.15.3", "Pillow==13.0.0", "tqdm==4.70.1",
        "portalocker==4.4.2"]
NO_DEPS_PINS = ["gluoncv==0.10.5.post0"]

MODELS = [
    "resnet18_v1b", "resnet50_v1d", "resnet50_v1d_0.86", "resnet50_v1d_0.48", "resnet50_v1d_0.37",
    "resnet50_v1d_0.11", "resnet101_v1d", "resnet101_v1d_0.76", "resnet101_v1d_0.73", "resnet18_v1b_0.89",
    "resnet50_v1",
    "mobilenet1.0", "mobilenetv2_1.0", "mobilenetv3_large", "mobilenetv3_small", "simple_pose_resnet18_v1b",
    # Held-out architectures (issue 17): squeeze-excitation (AdaptiveAvgPooling2D), split attention,
    # dense and inception blocks, GluonCV's mobile pose nets, and the YOLOv3 detector GluonCV's own
    # pose demo pairs with simple_pose (_arange, slice_like, tile, repeat, _contrib_box_nms).
    "se_resnet18_v1", "resnest14", "densenet121", "inceptionv3", "mobile_pose_resnet18_v1b",
    "mobile_pose_mobilenetv3_large", "yolo3_mobilenet1.0_coco",
]
MODEL_INPUT = {"simple_pose_resnet18_v1b": (1, 3, 256, 192), "mobile_pose_resnet18_v1b": (1, 3, 256, 192),
               "mobile_pose_mobilenetv3_large": (1, 3, 256, 192), "inceptionv3": (1, 3, 299, 299),
               "yolo3_mobilenet1.0_coco": (1, 3, 416, 416)}
DEFAULT_INPUT = (1, 3, 224, 224)
# Detectors: the tensor their NMS reads, saved too. NMS output is a discontinuous function of its input
# (random-weight YOLOv3 scores tie to 1e-7), so the tests check the network up to it against MXNet,
# and the NMS on exactly the tensor MXNet's NMS saw, separately.
NMS_INPUT = {"yolo3_mobilenet1.0_coco": "yolov30_concat2_output"}
# get_model keywords beyond pretrained=False: nothing pretrained may be downloaded.
MODEL_KWARGS = {"yolo3_mobilenet1.0_coco": {"pretrained_base": False},
                "mobile_pose_resnet18_v1b": {"pretrained_base": False},
                "mobile_pose_mobilenetv3_large": {"pretrained_base": False}}


# The operator cases `op_cases` builds and the params files `params_cases` writes with a reference
# (the sparse file has none: the reader must refuse it). Add a case in both places; the build checks.
OP_CASES = (
    "activations", "adaptive_avg_pool", "adaptive_avg_pool_divisible", "alias_ops", "alias_ops_more", "arange",
    "batch_dot", "batchnorm", "batchnorm_2d", "batchnorm_fix_gamma_default", "batchnorm_global_stats",
    "box_nms_batch_background", "box_nms_center", "box_nms_force", "box_nms_none_valid", "box_nms_to_center",
    "box_nms_yolo", "broadcast", "broadcast_to_cast", "concat", "conv_1d", "conv_basic", "conv_depthwise",
    "conv_stride_dilate_group", "deconv_adj", "deconv_basic", "deconv_group", "deconv_target_shape", "dot",
    "elemwise", "expand_squeeze", "fc_flatten", "fc_no_bias", "fc_no_flatten", "flatten_dropout", "hard_sigmoid",
    "instancenorm", "l2normalization_channel", "l2normalization_instance", "l2normalization_spatial", "layernorm",
    "leaky_family", "legacy_json_param", "pad", "pool_1d", "pool_avg_full_excl", "pool_avg_full_incl",
    "pool_avg_full_pad_excl", "pool_avg_full_pad_incl", "pool_avg_valid_pad_excl", "pool_avg_valid_pad_incl",
    "pool_global", "pool_max_full", "pool_max_full_pad", "pool_max_valid_pad", "pool_sum", "pool_sum_full", "prelu",
    "reduce", "regression_outputs", "repeat", "reshape_codes", "reshape_legacy_target", "scalars", "slice_like",
    "slices", "softmax", "softmax_activation", "softmax_output_2d", "softmax_output_4d", "softmax_output_multi",
    "softmax_output_preserve", "split", "split_squeeze", "sync_batchnorm", "tile", "transpose", "unary_math",
    "unary_ops", "upsampling_bilinear", "upsampling_multi", "upsampling_nearest", "v1_layers",
)
PARAMS_CASES = ("dtypes_v2", "legacy", "np_shape_v3", "unnamed", "v1")


def script_key() -> str:
    from edgepose.files import sha256_file  # orchestrator only (the worker runs without edgepose)

    return sha256_file(Path(__file__))[:16]


def cache_root() -> Path:
    env = os.environ.get("EDGEPOSE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgepose"


def fixtures_dir() -> Path:
    env = os.environ.get("EDGEPOSE_MXNET_FIXTURES")
    return Path(env) if env else cache_root() / "mxnet-fixtures" / script_key()


# ======================================================================================= orchestrator

def ensure_venv(log) -> Path:
    env = os.environ.get("EDGEPOSE_MXNET_VENV")
    from edgepose.files import sha256_bytes

    pins_key = sha256_bytes(json.dumps([PINS, NO_DEPS_PINS]))[:12]
    venv = Path(env) if env else cache_root() / f"mxnet-venv-{pins_key}"
    python = venv / "bin" / "python"
    marker = venv / ".edgepose-ok"
    if marker.is_file() and python.exists():
        return python
    if venv.exists() and not env:
        shutil.rmtree(venv)
    log(f"creating MXNet venv at {venv}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + PINS, check=True)
    subprocess.run(pip + ["--no-deps"] + NO_DEPS_PINS, check=True)
    subprocess.run([str(python), "-c", "import mxnet, gluoncv; print(mxnet.__version__, gluoncv.__version__)"],
                   check=True)
    marker.write_text(json.dumps({"pins": PINS + NO_DEPS_PINS}))
    return python


def build(out: Path, *, force: bool = False) -> Path:
    """Make sure `out` holds a complete fixture set; returns it. Safe to call from parallel processes."""
    import fcntl

    def log(msg: str) -> None:
        print(f"[mxnet fixtures] {msg}", file=sys.stderr, flush=True)

    if (out / "manifest.json").is_file() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "manifest.json").is_file() and not force:
            return out
        t0 = time.time()
        python = ensure_venv(log)
        t_venv = time.time() - t0
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        env = {**os.environ, "MXNET_ENGINE_TYPE": "NaiveEngine", "OMP_NUM_THREADS": "1",
               "MXNET_STORAGE_FALLBACK_LOG_VERBOSE": "0",
               "MXNET_HOME": str(tmp / "mxnet_home")}
        log(f"building fixtures in {tmp}")
        try:
            # Models run as users run them (MKLDNN); operator cases on MXNet's reference kernels,
            # since MKLDNN 1.9.1 cannot run e.g. a Deconvolution with target_shape.
            for part, extra in (("models", {}), ("ops", {"MXNET_MKLDNN_ENABLED": "0"})):
                # -I: the file's own folder (symbol.py, params.py, ...) must not shadow modules MXNet imports
                subprocess.run([str(python), "-I", str(Path(__file__).resolve()), "--worker", str(tmp), "--part", part],
                               check=True, env={**env, **extra}, stdin=subprocess.DEVNULL)
            manifest = {"timings": {}}
            for part in ("models", "ops"):
                piece = json.loads((tmp / f"manifest-{part}.json").read_text())
                timings = {**manifest["timings"], **piece.pop("timings")}
                manifest.update(piece)
                manifest["timings"] = timings
            manifest["timings"]["venv_s"] = round(t_venv, 1)
            manifest["timings"]["total_s"] = round(time.time() - t0, 1)
            manifest["script_key"] = script_key()
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"done in {time.time() - t0:.0f} s (venv {t_venv:.0f} s): {out}")
        if out.parent == cache_root() / "mxnet-fixtures":  # drop sets made by older versions of this script
            for old in out.parent.iterdir():
                if old != out and old.is_dir() and len(old.name) == 16 and not old.name.startswith("."):
                    shutil.rmtree(old, ignore_errors=True)
                elif old.suffix == ".lock" and old.name != f".{out.name}.lock":
                    old.unlink(missing_ok=True)
    return out


# ============================================================================================= worker

def worker(out: Path, part: str) -> None:
    import numpy as np
    import mxnet as mx

    rng = np.random.default_rng(20240601 if part == "models" else 20240602)
    mx.random.seed(7)
    timings: dict[str, float] = {}
    manifest: dict = {"mxnet_version": mx.__version__, "timings": timings}

    def save_case(folder: Path, name: str, sym, arg_params: dict, aux_params: dict,
                  inputs: dict, outputs: list, symbol_json: str | None = None) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}-symbol.json").write_text(symbol_json or sym.tojson())
        saved = {f"arg:{k}": v for k, v in arg_params.items()}
        saved.update({f"aux:{k}": v for k, v in aux_params.items()})
        mx.nd.save(str(folder / f"{name}-0000.params"), saved)
        arrays = {f"input__{k}": v for k, v in inputs.items()}
        arrays.update({f"output__{i}": o for i, o in enumerate(outputs)})
        np.savez(folder / f"{name}.npz", output_names=np.array(sym.list_outputs()), **arrays)
        return {"inputs": {k: list(v.shape) for k, v in inputs.items()},
                "outputs": [list(o.shape) for o in outputs], "output_names": sym.list_outputs()}

    if part == "models":
        models_part(mx, np, rng, out, manifest)
    else:
        ops_part(mx, np, rng, out, manifest, save_case)
        manifest["params"] = params_cases(mx, np, rng, out / "params")
    check_cases(manifest)
    (out / f"manifest-{part}.json").write_text(json.dumps(manifest, indent=1))


def check_cases(manifest: dict) -> None:
    """What was built is what MODELS / OP_CASES / PARAMS_CASES list (tests are parametrized by them)."""
    lists = {"models": (MODELS, manifest.get("models")), "ops": (OP_CASES, manifest.get("ops")),
             "params": (PARAMS_CASES, {k: v for k, v in (manifest.get("params") or {}).items() if "shapes" in v}
                        if "params" in manifest else None)}
    for what, (listed, built) in lists.items():
        if built is None:
            continue
        extra, missing = sorted(set(built) - set(listed)), sorted(set(listed) - set(built))
        if extra or missing:
            raise RuntimeError(f"{what}: built but not listed {extra}, listed but not built {missing}; "
                               f"keep the list in {Path(__file__).name} equal to what is built")


def models_part(mx, np, rng, out: Path, manifest: dict) -> None:
    """GluonCV models with random weights and non-trivial BatchNorm statistics, exported."""
    from gluoncv.model_zoo import get_model

    timings = manifest["timings"]
    manifest["models"] = {}
    t_models = time.time()
    for name in MODELS:
        t = time.time()
        net = get_model(name, pretrained=False, **MODEL_KWARGS.get(name, {}))
        net.initialize(mx.init.Xavier(magnitude=2.0))
        shape = MODEL_INPUT.get(name, DEFAULT_INPUT)
        x = mx.nd.array(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
        net(x)  # materialise deferred shapes before setting values
        for pname, p in net.collect_params().items():
            value = p.data().asnumpy()
            if pname.endswith("running_mean"):
                value = rng.normal(0.0, 0.2, value.shape)
            elif pname.endswith("running_var"):
                value = rng.uniform(0.5, 2.0, value.shape)
            elif pname.endswith("gamma"):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif pname.endswith("beta") or pname.endswith("bias"):
                value = rng.normal(0.0, 0.1, value.shape)
            else:
                continue
            p.set_data(mx.nd.array(value.astype(np.float32)))
        net.hybridize(static_alloc=False)
        y = net(x)
        outputs = [o.asnumpy() for o in (y if isinstance(y, (list, tuple)) else [y])]
        prefix = out / "models" / name
        prefix.parent.mkdir(parents=True, exist_ok=True)
        net.export(str(prefix), epoch=0)
        sym = mx.sym.load(str(prefix) + "-symbol.json")
        internals = {}
        if name in NMS_INPUT:  # outputs and NMS input from one executor run: the same numbers NMS saw
            saved = mx.nd.load(str(prefix) + "-0000.params")
            args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
            aux = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
            both = mx.sym.Group(list(sym) + [sym.get_internals()[NMS_INPUT[name]]])
            ex = both.bind(mx.cpu(), args={**args, "data": x}, aux_states=aux, grad_req="null")
            *run, internal = [o.asnumpy() for o in ex.forward(is_train=False)]
            outputs = run
            internals[f"internal__{NMS_INPUT[name]}"] = internal
        np.savez(out / "models" / f"{name}.npz", output_names=np.array(sym.list_outputs()),
                 input__data=x.asnumpy(), **{f"output__{i}": o for i, o in enumerate(outputs)}, **internals)
        manifest["models"][name] = {"inputs": {"data": list(shape)}, "outputs": [list(o.shape) for o in outputs],
                                    "output_names": sym.list_outputs(),
                                    "internals": [k.split("__", 1)[1] for k in internals],
                                    "params_bytes": (out / "models" / f"{name}-0000.params").stat().st_size,
                                    "seconds": round(time.time() - t, 2)}
        print(f"[worker] model {name} {round(time.time() - t, 1)} s", file=sys.stderr, flush=True)
    timings["models_s"] = round(time.time() - t_models, 1)


def ops_part(mx, np, rng, out: Path, manifest: dict, save_case) -> None:
    """One small graph per operator variant, run by MXNet (forward, inference mode)."""
    timings = manifest["timings"]
    manifest["ops"] = {}
    t_ops = time.time()
    for case in op_cases(mx):
        name, sym = case["name"], case["sym"]
        in_shapes = case["inputs"]
        lo, hi = case.get("range", (-2.0, 2.0))
        inputs = {k: rng.uniform(lo, hi, s).astype(np.float32) for k, s in in_shapes.items()}
        for k, make in case.get("values", {}).items():  # inputs that need structure (boxes)
            inputs[k] = np.asarray(make(rng), np.float32)
        arg_shapes, _, aux_shapes = sym.infer_shape(**in_shapes)
        args, aux = {}, {}
        labels = case.get("labels", {})
        for arg, shp in zip(sym.list_arguments(), arg_shapes):
            if arg in in_shapes:
                continue
            if arg in labels:
                continue
            args[arg] = mx.nd.array(case.get("init", {}).get(arg, rng.normal(0, 0.5, shp)).astype(np.float32))
        for arg, shp in zip(sym.list_auxiliary_states(), aux_shapes):
            v = rng.uniform(0.5, 2.0, shp) if arg.endswith("var") else rng.normal(0, 0.3, shp)
            aux[arg] = mx.nd.array(v.astype(np.float32))
        bind_args = {k: mx.nd.array(v) for k, v in inputs.items()}
        bind_args.update(args)
        for lab in labels:
            bind_args[lab] = mx.nd.zeros(dict(zip(sym.list_arguments(), arg_shapes))[lab])
        try:
            ex = sym.bind(mx.cpu(), args=bind_args, aux_states=aux, grad_req="null")
            outs = [o.asnumpy() for o in ex.forward(is_train=False)]
        except Exception as exc:
            raise RuntimeError(f"op case {name}: MXNet failed: {exc}") from exc
        manifest["ops"][name] = save_case(out / "ops", name, sym, args, aux, inputs, outs,
                                          symbol_json=case.get("json"))
        manifest["ops"][name]["labels"] = list(labels)
    timings["ops_s"] = round(time.time() - t_ops, 1)


def op_cases(mx) -> list[dict]:
    """Small graphs, one per operator variant; `inputs` are the data variables' shapes, `values`
    optional makers of structured inputs (rng -> array)."""
    import numpy as np

    S = mx.sym
    d = S.var("data")
    cases: list[dict] = []

    def add(name, sym, inputs=None, **kw):
        cases.append({"name": name, "sym": sym, "inputs": inputs or {"data": (2, 3, 9, 11)}, **kw})

    # convolution family
    add("conv_basic", S.Convolution(d, kernel=(3, 3), num_filter=8, pad=(1, 1), name="conv"))
    add("conv_stride_dilate_group", S.Convolution(d, kernel=(3, 3), stride=(2, 2), dilate=(2, 2), pad=(2, 1),
                                                   num_group=2, num_filter=6, no_bias=True, name="conv"),
        {"data": (1, 4, 15, 12)})
    add("conv_depthwise", S.Convolution(d, kernel=(5, 5), pad=(2, 2), num_group=4, num_filter=4, name="dw"),
        {"data": (1, 4, 10, 10)})
    add("conv_1d", S.Convolution(d, kernel=(3,), stride=(2,), pad=(1,), num_filter=5, name="c1"), {"data": (2, 3, 17)})
    add("deconv_basic", S.Deconvolution(d, kernel=(4, 4), stride=(2, 2), pad=(1, 1), num_filter=5, no_bias=False,
                                        name="up"), {"data": (1, 3, 7, 9)})
    add("deconv_adj", S.Deconvolution(d, kernel=(3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 1), num_filter=4,
                                      name="up"), {"data": (1, 3, 6, 5)})
    add("deconv_target_shape", S.Deconvolution(d, kernel=(3, 3), stride=(2, 2), dilate=(1, 1), target_shape=(16, 18),
                                               num_filter=4, name="up"), {"data": (1, 3, 8, 9)})
    # (MXNet's MKLDNN build cannot run a dilated Deconvolution, so no dilation here)
    add("deconv_group", S.Deconvolution(d, kernel=(3, 3), stride=(2, 2), num_group=3,
                                               num_filter=6, name="up"), {"data": (1, 3, 6, 6)})
    # normalisation
    add("batchnorm", S.BatchNorm(d, fix_gamma=False, eps=1e-4, name="bn"))
    add("batchnorm_fix_gamma_default", S.BatchNorm(d, name="bn"))  # fix_gamma defaults to True
    add("batchnorm_global_stats", S.BatchNorm(d, fix_gamma=False, use_global_stats=True, momentum=0.5, name="bn"))
    add("batchnorm_2d", S.BatchNorm(d, fix_gamma=False, name="bn"), {"data": (4, 6)})
    add("instancenorm", S.InstanceNorm(d, eps=1e-3, name="inorm"))
    add("layernorm", S.LayerNorm(d, axis=-1, eps=1e-5, name="ln"), {"data": (2, 5, 8)})
    for mode in ("instance", "channel", "spatial"):
        add(f"l2normalization_{mode}", S.L2Normalization(d, mode=mode, name="l2"))
    # activations
    add("activations", S.Group([S.Activation(d, act_type=a, name=f"act_{a}")
                                for a in ("relu", "sigmoid", "tanh", "softrelu", "softsign")]))
    add("leaky_family", S.Group([
        S.LeakyReLU(d, act_type="leaky", slope=0.1, name="leaky"),
        S.LeakyReLU(d, act_type="elu", slope=0.5, name="elu"),
        S.LeakyReLU(d, act_type="selu", name="selu"),
        S.LeakyReLU(d, act_type="gelu", name="gelu"),
        S.LeakyReLU(d, act_type="rrelu", name="rrelu")[0],  # [1] is its training mask
    ]))
    add("prelu", S.LeakyReLU(d, act_type="prelu", name="prelu"))
    add("hard_sigmoid", S.Group([S.hard_sigmoid(d, name="hs"), S.hard_sigmoid(d, alpha=0.25, beta=0.4, name="hs2")]))
    # pooling: sizes chosen so 'full' windows run past the edge
    pool_in = {"data": (1, 2, 9, 10)}
    add("pool_max_valid_pad", S.Pooling(d, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name="p"),
        pool_in)
    add("pool_max_full", S.Pooling(d, kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                                   name="p"), pool_in)
    # (no window may lie wholly in the padding: MXNet and ONNX Runtime give -FLT_MAX there, MNN -2^24)
    add("pool_max_full_pad", S.Pooling(d, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max",
                                       pooling_convention="full", name="p"), pool_in)
    for inc in (True, False):
        tag = "incl" if inc else "excl"
        add(f"pool_avg_valid_pad_{tag}", S.Pooling(d, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                                                   count_include_pad=inc, name="p"), pool_in)
        add(f"pool_avg_full_{tag}", S.Pooling(d, kernel=(2, 2), stride=(2, 2), pool_type="avg",
                                              pooling_convention="full", count_include_pad=inc, name="p"), pool_in)
        add(f"pool_avg_full_pad_{tag}", S.Pooling(d, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                                                  pooling_convention="full", count_include_pad=inc, name="p"),
            pool_in)
    add("pool_sum", S.Pooling(d, kernel=(2, 2), stride=(1, 1), pool_type="sum", name="p"), pool_in)
    add("pool_sum_full", S.Pooling(d, kernel=(2, 2), stride=(2, 2), pool_type="sum", pooling_convention="full",
                                   name="p"), pool_in)
    add("pool_global", S.Group([S.Pooling(d, kernel=(1, 1), global_pool=True, pool_type=t, name=f"g{t}")
                                for t in ("avg", "max", "sum")]), pool_in)
    add("pool_1d", S.Pooling(d, kernel=(3,), stride=(2,), pool_type="max", pooling_convention="full", name="p"),
        {"data": (1, 2, 10)})
    # dense
    add("fc_flatten", S.FullyConnected(d, num_hidden=7, name="fc"))
    add("fc_no_flatten", S.FullyConnected(d, num_hidden=7, flatten=False, name="fc"), {"data": (2, 5, 6)})
    add("fc_no_bias", S.FullyConnected(d, num_hidden=4, no_bias=True, name="fc"), {"data": (3, 10)})
    add("flatten_dropout", S.Flatten(S.Dropout(d, p=0.5, name="drop"), name="flat"))
    # arithmetic
    a, b = S.var("a"), S.var("b")
    same = {"a": (2, 3, 4, 5), "b": (2, 3, 4, 5)}
    add("elemwise", S.Group([S.elemwise_add(a, b, name="add"), S.elemwise_sub(a, b, name="sub"),
                             S.elemwise_mul(a, b, name="mul"), S.elemwise_div(a, b, name="div"),
                             S.add_n(a, b, a, name="addn"), S.maximum(a, b), S.minimum(a, b)]),
        same, range=(0.5, 2.0))
    add("broadcast", S.Group([S.broadcast_add(a, b, name="add"), S.broadcast_sub(a, b, name="sub"),
                              S.broadcast_mul(a, b, name="mul"), S.broadcast_div(a, b, name="div"),
                              S.broadcast_power(a, b, name="pow"), S.broadcast_maximum(a, b, name="mx")]),
        {"a": (2, 3, 4, 5), "b": (1, 3, 1, 1)}, range=(0.5, 2.0))
    add("scalars", S.Group([d + 3.0, d - 2.0, 5.0 - d, d * 2.5, d / 4.0, 2.0 / d, d ** 2.0, 2.0 ** d,
                            S.maximum(d, 1.0), S.minimum(d, 1.2), S.clip(d, a_min=0.7, a_max=1.5),
                            d > 1.0, d >= 1.0, d < 1.0, d <= 1.0, d == 1.0, d != 1.0]),
        {"data": (2, 3, 4)}, range=(0.5, 2.0))
    add("unary_math", S.Group([S.exp(d), S.log(d), S.sqrt(d), S.abs(d - 1.0), S.negative(d), S.reciprocal(d),
                               S.square(d), S.rsqrt(d), S.floor(d), S.ceil(d)]),
        {"data": (2, 3, 4)}, range=(0.5, 2.0))
    # shapes
    r = {"data": (2, 3, 4, 6)}
    add("reshape_codes", S.Group([
        S.Reshape(d, shape=(0, -1), name="r0"), S.Reshape(d, shape=(-2,), name="r1"),
        S.Reshape(d, shape=(0, -3, 0), name="r2"), S.Reshape(d, shape=(-4, 1, 2, -2), name="r3"),
        S.Reshape(d, shape=(0, 0, -4, 2, -1, 0), name="r4"), S.Reshape(d, shape=(-1, 6), name="r5"),
        S.Reshape(d, shape=(0, -1), reverse=True, name="r6"), S.Reshape(d, shape=(-1, 0), reverse=True, name="r7"),
        S.Reshape(d, shape=(6, 0, -1), name="r8"),
    ]), r)
    add("reshape_legacy_target", S.Reshape(d, target_shape=(0, 12), name="r"), r)
    add("transpose", S.Group([S.transpose(d, axes=(0, 2, 3, 1), name="t0"), S.transpose(d, name="t1"),
                              S.SwapAxis(d, dim1=1, dim2=3, name="sw")]), r)
    add("expand_squeeze", S.Group([S.expand_dims(d, axis=1, name="e"), S.expand_dims(d, axis=-1, name="e2"),
                                   S.squeeze(S.expand_dims(d, axis=2), axis=2, name="sq")]), r)
    add("concat", S.Group([S.Concat(a, b, dim=1, name="c1"), S.Concat(a, b, a, dim=-1, name="c2")]),
        {"a": (2, 3, 4), "b": (2, 3, 4)})
    add("split", S.SliceChannel(d, num_outputs=3, axis=1, name="sp"), {"data": (2, 6, 4)})
    add("split_squeeze", S.SliceChannel(d, num_outputs=3, axis=1, squeeze_axis=True, name="sp"), {"data": (2, 3, 4)})
    add("slices", S.Group([
        S.slice(d, begin=(0, 1), end=(2, 3), name="s0"),
        S.slice(d, begin=(None, None, 1), end=(None, None, None), step=(1, 2, 2), name="s1"),
        S.slice(d, begin=(None, 2), end=(None, None), step=(None, -1), name="s2"),
        S.slice(d, begin=(1, -2, 3), end=(None, 0, 1), step=(1, -1, -2), name="s3"),
        S.slice_axis(d, axis=2, begin=1, end=None, name="sa0"),
        S.slice_axis(d, axis=-1, begin=-4, end=-1, name="sa1"),
    ]), r)
    add("pad", S.Group([S.Pad(d, mode=m, pad_width=(0, 0, 0, 0, 1, 2, 2, 1), constant_value=0.5, name=f"pad_{m}")
                        for m in ("constant", "edge", "reflect")]), {"data": (1, 2, 5, 6)})
    add("reduce", S.Group([S.mean(d, axis=(2, 3), keepdims=True, name="m"), S.sum(d, axis=1, name="s"),
                           S.max(d, axis=(1,), exclude=True, name="mx"), S.min(d, name="mn"),
                           S.mean(d, name="mall")]), r)
    add("dot", S.Group([S.dot(a, b, name="d0"), S.dot(a, b, transpose_b=True, name="d1")]),
        {"a": (3, 4), "b": (4, 4)})
    add("batch_dot", S.batch_dot(a, b, transpose_a=True, name="bd"), {"a": (2, 5, 3), "b": (2, 5, 4)})
    add("broadcast_to_cast", S.Group([S.broadcast_to(d, shape=(2, 0, 4, 0), name="bt"),
                                      S.Cast(S.Cast(d * 3.0, dtype="int32"), dtype="float32", name="ca")]),
        {"data": (2, 3, 1, 5)})
    # softmax family (label variables have no parameters)
    lab = S.var("softmax_label")
    add("softmax", S.Group([S.softmax(d, axis=-1, name="sm0"), S.softmax(d, axis=1, name="sm1"),
                            S.softmax(d, axis=1, temperature=2.0, name="sm2"), S.log_softmax(d, axis=2, name="lsm")]))
    add("softmax_output_2d", S.SoftmaxOutput(d, lab, name="softmax"), {"data": (3, 10)},
        labels={"softmax_label": None})
    add("softmax_output_4d", S.SoftmaxOutput(d, lab, name="softmax"), labels={"softmax_label": None})
    add("softmax_output_multi", S.SoftmaxOutput(d, lab, multi_output=True, name="softmax"),
        labels={"softmax_label": None})
    add("softmax_output_preserve", S.SoftmaxOutput(d, lab, preserve_shape=True, name="softmax"),
        labels={"softmax_label": None})
    add("softmax_activation", S.Group([S.SoftmaxActivation(d, mode="instance", name="sa0"),
                                       S.SoftmaxActivation(d, mode="channel", name="sa1")]))
    # resizing
    add("upsampling_nearest", S.Group([S.UpSampling(d, scale=2, sample_type="nearest", name="u2"),
                                       S.UpSampling(d, scale=3, sample_type="nearest", name="u3")]),
        {"data": (1, 2, 4, 5)})
    add("upsampling_multi", S.UpSampling(a, b, scale=2, sample_type="nearest", num_args=2, name="um"),
        {"a": (1, 2, 4, 6), "b": (1, 3, 8, 12)})
    add("upsampling_bilinear", S.UpSampling(d, S.var("up_weight"), scale=2, sample_type="bilinear",
                                            num_filter=2, num_args=2, name="up"), {"data": (1, 2, 4, 5)})

    # adaptive pooling (squeeze-excitation, ResNeSt): global, divisible and uneven bins
    add("adaptive_avg_pool", S.Group([
        S.contrib.AdaptiveAvgPooling2D(d, output_size=1, name="ap1"),
        S.contrib.AdaptiveAvgPooling2D(d, name="ap_default"),
        S.contrib.AdaptiveAvgPooling2D(d, output_size=(3, 4), name="ap34"),  # 9x11 -> 3x4: uneven columns
        S.contrib.AdaptiveAvgPooling2D(d, output_size=(2, 3), name="ap23"),  # uneven both ways
    ]))
    add("adaptive_avg_pool_divisible", S.contrib.AdaptiveAvgPooling2D(d, output_size=(4, 3), name="ap"),
        {"data": (1, 2, 8, 9)})
    # YOLOv3 head ops: _arange, slice_like, tile, repeat
    add("arange", S.Group([
        S.broadcast_add(d, S.arange(start=0, stop=5, step=1.5, repeat=2, name="ar"), name="with_step"),
        S.broadcast_mul(d, S.arange(start=8, name="ar_stop_none"), name="with_stop_none"),
        S.broadcast_add(S.Reshape(d, shape=(0, 8, 1), name="r"), S.Reshape(S.arange(0, 80, name="ar80"),
                                                                         shape=(0, 1, 1, 1), name="r80"),
                        name="yolo_like"),
    ]), {"data": (2, 8)})
    grid = S.var("grid", shape=(1, 1, 16, 16, 2))
    add("slice_like", S.Group([
        S.slice_like(d, S.var("b"), axes=(2, 3), name="sl_axes"),
        S.slice_like(d, S.var("b"), name="sl_all"),
        S.slice_like(d, S.var("b"), axes=(-1,), name="sl_neg"),
        S.slice_like(grid, d * 0, axes=(2, 3), name="sl_const"),  # YOLOv3's offset grid
    ]), {"data": (1, 3, 9, 11), "b": (1, 2, 5, 7)})
    add("tile", S.Group([
        S.tile(d, reps=(2, 1, 3), name="t_same"), S.tile(d, reps=(3,), name="t_short"),
        S.tile(d, reps=(4, 1, 1, 1, 1), name="t_long"),  # YOLOv3: reps longer than the rank
    ]), {"data": (2, 3, 4)})
    add("repeat", S.Group([
        S.repeat(d, repeats=2, axis=-1, name="rp_last"), S.repeat(d, repeats=2, axis=-2, name="rp_h"),
        S.repeat(d, repeats=3, axis=0, name="rp_0"), S.repeat(d, repeats=2, name="rp_flat"),
    ]), {"data": (2, 3, 4, 5)})
    # box_nms: rows with structure (clustered boxes, distinct scores), one case per attribute set
    def boxes(rng, shape, *, coord_start, score_index, id_index=-1, n_ids=3, center=False):
        n = int(np.prod(shape[:-1]))
        rows = rng.uniform(0, 1, (n, shape[-1]))
        centres = rng.uniform(10, 90, (6, 2))[rng.integers(0, 6, n)] + rng.normal(0, 4, (n, 2))
        size = rng.uniform(8, 30, (n, 2))
        coords = (np.concatenate([centres, size], 1) if center else
                  np.concatenate([centres - size / 2, centres + size / 2], 1))
        rows[:, coord_start:coord_start + 4] = coords
        rows[:, score_index] = rng.permutation(n) / n + rng.uniform(0, 0.5 / n, n)  # distinct scores
        if id_index >= 0:
            rows[:, id_index] = rng.integers(0, n_ids, n)
        return rows.reshape(shape)

    add("box_nms_yolo", S.contrib.box_nms(d, overlap_thresh=0.45, valid_thresh=0.01, topk=50, coord_start=2,
                                          score_index=1, id_index=0, force_suppress=False, name="nms"),
        {"data": (1, 120, 6)}, values={"data": lambda r: boxes(r, (1, 120, 6), coord_start=2, score_index=1,
                                                                 id_index=0)})
    add("box_nms_force", S.contrib.box_nms(d, overlap_thresh=0.3, coord_start=1, score_index=0, name="nms"),
        {"data": (1, 60, 5)}, values={"data": lambda r: boxes(r, (1, 60, 5), coord_start=1, score_index=0)})
    add("box_nms_batch_background", S.contrib.box_nms(d, overlap_thresh=0.5, valid_thresh=0.3, topk=20,
                                                      coord_start=2, score_index=1, id_index=0, background_id=1,
                                                      name="nms"),
        {"data": (2, 2, 40, 7)}, values={"data": lambda r: boxes(r, (2, 2, 40, 7), coord_start=2, score_index=1,
                                                                  id_index=0)})
    add("box_nms_center", S.contrib.box_nms(d, overlap_thresh=0.4, coord_start=2, score_index=1, id_index=0,
                                            force_suppress=True, in_format="center", out_format="corner",
                                            name="nms"),
        {"data": (1, 50, 6)}, values={"data": lambda r: boxes(r, (1, 50, 6), coord_start=2, score_index=1,
                                                                id_index=0, center=True)})
    add("box_nms_to_center", S.contrib.box_nms(d, overlap_thresh=0.4, coord_start=2, score_index=1, id_index=0,
                                               out_format="center", name="nms"),
        {"data": (1, 50, 6)}, values={"data": lambda r: boxes(r, (1, 50, 6), coord_start=2, score_index=1,
                                                                id_index=0)})
    add("box_nms_none_valid", S.contrib.box_nms(d, valid_thresh=2.0, name="nms"), {"data": (1, 30, 6)},
        values={"data": lambda r: boxes(r, (1, 30, 6), coord_start=2, score_index=1)})

    # A legacy (v0.8-style) file: attributes under "param", no version; MXNet upgrades it on load.
    legacy = S.Activation(S.Convolution(d, kernel=(3, 3), num_filter=4, name="c"), act_type="relu", name="r")
    doc = json.loads(legacy.tojson())
    for n in doc["nodes"]:
        if "attrs" in n:
            n["param"] = n.pop("attrs")
    doc.pop("attrs", None)
    text = json.dumps(doc)
    add("legacy_json_param", mx.sym.load_json(text), json=text)
    # Alias operator names as older exporters wrote them, loaded by MXNet itself.
    alias = S.Group([S.elemwise_add(a, b, name="p"), S.elemwise_sub(a, b, name="m"), S.elemwise_mul(a, b, name="x"),
                     S.elemwise_div(a, b, name="dv")])
    doc = json.loads(alias.tojson())
    for n in doc["nodes"]:
        n["op"] = {"elemwise_add": "_Plus", "elemwise_sub": "_Minus", "elemwise_mul": "_Mul",
                   "elemwise_div": "_Div"}.get(n["op"], n["op"])
    text = json.dumps(doc)
    add("alias_ops", mx.sym.load_json(text), {"a": (2, 3), "b": (2, 3)}, json=text, range=(0.5, 2.0))
    # Every other alias the translator accepts, renamed in the JSON and loaded by MXNet itself.
    u, v = S.var("a"), S.var("b")
    renamed = {  # node name -> alias written into the JSON
        "n_add": "_add", "n_plus": "_plus", "n_sub": "_sub", "n_minus": "_minus", "n_mul": "_mul", "n_div": "_div",
        "n_pw": "_Power", "n_pw2": "_power", "n_mx": "_Maximum", "n_mn": "_Minimum",
        "n_bp": "broadcast_plus", "n_bm": "broadcast_minus",
        "s_plus": "_PlusScalar", "s_minus": "_MinusScalar", "s_rminus": "_RMinusScalar", "s_mul": "_MulScalar",
        "s_div": "_DivScalar", "s_rdiv": "_RDivScalar", "s_pow": "_PowerScalar", "s_rpow": "_RPowerScalar",
        "s_max": "_MaximumScalar", "s_min": "_MinimumScalar", "n_cast": "cast", "n_cat": "concat",
        "n_flat": "flatten", "n_resh": "reshape", "n_swap": "swapaxes", "n_id": "identity",
        "n_stop": "stop_gradient", "n_loss": "make_loss", "n_ews": "ElementWiseSum", "n_crop": "crop",
    }
    g = S.Group([
        S.elemwise_add(u, v, name="n_add"), S.elemwise_add(u, v, name="n_plus"), S.elemwise_sub(u, v, name="n_sub"),
        S.elemwise_sub(u, v, name="n_minus"), S.elemwise_mul(u, v, name="n_mul"), S.elemwise_div(u, v, name="n_div"),
        S._internal._power(u, v, name="n_pw"), S._internal._power(u, v, name="n_pw2"),
        S._internal._maximum(u, v, name="n_mx"),
        S._internal._minimum(u, v, name="n_mn"), S.broadcast_add(u, v, name="n_bp"), S.broadcast_sub(u, v, name="n_bm"),
        *[getattr(S._internal, f"_{op}_scalar")(u, scalar=value, name=f"s_{short}")
          for op, short, value in (("plus", "plus", 1.5), ("minus", "minus", 1.5), ("rminus", "rminus", 1.5),
                                   ("mul", "mul", 1.5), ("div", "div", 1.5), ("rdiv", "rdiv", 1.5),
                                   ("power", "pow", 1.5), ("rpower", "rpow", 1.5), ("maximum", "max", 1.1),
                                   ("minimum", "min", 1.1))],
        S.Cast(u, dtype="float32", name="n_cast"), S.Concat(u, v, dim=0, name="n_cat"), S.Flatten(u, name="n_flat"),
        S.Reshape(u, shape=(-1,), name="n_resh"), S.SwapAxis(u, dim1=0, dim2=1, name="n_swap"),
        S._internal._copy(u, name="n_id"), S.BlockGrad(u, name="n_stop"), S.MakeLoss(u, name="n_loss"),
        S.add_n(u, v, name="n_ews"), S.slice(u, begin=(0, 1), end=(2, 3), name="n_crop"),
    ])
    doc = json.loads(g.tojson())
    for n in doc["nodes"]:
        n["op"] = renamed.get(n["name"], n["op"])
    assert {n["op"] for n in doc["nodes"]} >= set(renamed.values())
    text = json.dumps(doc)
    add("alias_ops_more", mx.sym.load_json(text), {"a": (2, 3), "b": (2, 3)}, json=text, range=(0.5, 2.0))
    add("unary_ops", S.Group([S.relu(d - 1.0), S.sigmoid(d), S.tanh(d), S.softsign(d), S.erf(d), S.sin(d), S.cos(d),
                              S.sign(d - 1.0), S.prod(d, axis=1), S.broadcast_minimum(d, S.var("b")),
                              S.BlockGrad(d), S.stop_gradient(d)]),
        {"data": (2, 3, 4), "b": (1, 3, 1)})
    add("v1_layers", S.Pooling_v1(S.BatchNorm_v1(S.Convolution_v1(d, kernel=(3, 3), num_filter=4, pad=(1, 1),
                                                                  name="c"), fix_gamma=False, name="bn"),
                                  kernel=(2, 2), stride=(2, 2), pool_type="max", name="p"))
    add("sync_batchnorm", S.contrib.SyncBatchNorm(d, key="bn0", fix_gamma=False, name="sbn"))
    add("regression_outputs", S.Group([S.LinearRegressionOutput(d, S.var("l1"), name="lin"),
                                       S.LogisticRegressionOutput(d, S.var("l2"), name="logit"),
                                       S.MAERegressionOutput(d, S.var("l3"), name="mae"),
                                       S.Softmax(d, S.var("l4"), name="old_softmax")]),
        {"data": (3, 5)}, labels={"l1": None, "l2": None, "l3": None, "l4": None})
    return cases


def params_cases(mx, np, rng, folder: Path) -> dict:
    """NDArray files in each format, plus what MXNet itself loads from each (the reference)."""
    import struct

    folder.mkdir(parents=True, exist_ok=True)
    info = {}

    def reference(name: str, loaded, note: str) -> None:
        if isinstance(loaded, dict):
            arrays = {k: v.asnumpy() for k, v in loaded.items()}
        else:
            arrays = {str(i): v.asnumpy() for i, v in enumerate(loaded)}
        np.savez(folder / f"{name}.npz", **arrays)
        info[name] = {"names": list(arrays), "note": note,
                      "dtypes": {k: str(v.dtype) for k, v in arrays.items()},
                      "shapes": {k: list(v.shape) for k, v in arrays.items()}}

    # V2 (what MXNet 1.x writes), every dtype it can hold
    arrays = {
        "arg:f32": rng.normal(0, 1, (2, 3, 4, 5)).astype("float32"),
        "arg:f16": rng.normal(0, 1, (7,)).astype("float16"),
        "arg:f64": rng.normal(0, 1, (3, 2)).astype("float64"),
        "aux:u8": rng.integers(0, 255, (4, 4)).astype("uint8"),
        "aux:i32": rng.integers(-2**31, 2**31 - 1, (5,)).astype("int32"),
        "aux:i8": rng.integers(-128, 127, (3, 3)).astype("int8"),
        "aux:i64": rng.integers(-2**62, 2**62, (2, 2)).astype("int64"),
        "arg:bool": rng.integers(0, 2, (6,)).astype("bool"),
        "arg:zero_size": np.zeros((0, 3), "float32"),
    }
    mx.nd.save(str(folder / "dtypes_v2.params"), {k: mx.nd.array(v, dtype=v.dtype) for k, v in arrays.items()})
    reference("dtypes_v2", mx.nd.load(str(folder / "dtypes_v2.params")), "mx.nd.save, V2 magic")

    # V3: numpy shape semantics (scalars allowed)
    with mx.util.np_shape(True):
        mx.nd.save(str(folder / "np_shape_v3.params"),
                   {"scalar": mx.nd.array(np.array([2.5], "float32")).reshape(()),
                    "matrix": mx.nd.array(rng.normal(0, 1, (3, 4)).astype("float32"))})
        loaded = mx.nd.load(str(folder / "np_shape_v3.params"))
        reference("np_shape_v3", loaded, "saved under np_shape(True), V3 magic")

    # an unnamed list
    mx.nd.save(str(folder / "unnamed.params"), [mx.nd.array(rng.normal(0, 1, (2, 2)).astype("float32")),
                                                mx.nd.array(np.arange(3, dtype="int32"), dtype="int32")])
    reference("unnamed", mx.nd.load(str(folder / "unnamed.params")), "saved from a list: no names")

    # sparse storage (the reader must refuse it clearly)
    rsp = mx.nd.sparse.row_sparse_array((np.ones((1, 3), "float32"), [1]), shape=(3, 3))
    mx.nd.save(str(folder / "sparse.params"), {"arg:rsp": rsp})
    info["sparse"] = {"note": "row_sparse storage", "names": ["arg:rsp"]}

    # Older formats, written byte by byte from MXNet's Load code, then loaded by MXNet 1.9.1 itself.
    def legacy_array(arr, *, v1: bool) -> bytes:
        flags = {"float32": 0, "float64": 1, "float16": 2, "uint8": 3, "int32": 4, "int8": 5, "int64": 6}
        if v1:
            head = (struct.pack("<I", 0xF993FAC8) + struct.pack("<i", arr.ndim)
                    + struct.pack(f"<{arr.ndim}q", *arr.shape))
        else:
            head = struct.pack("<I", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        return head + struct.pack("<iii", 1, 0, flags[str(arr.dtype)]) + data

    def ndarray_file(named: dict, *, v1: bool) -> bytes:
        body = struct.pack("<QQQ", 0x112, 0, len(named))
        body += b"".join(legacy_array(v, v1=v1) for v in named.values())
        body += struct.pack("<Q", len(named))
        for k in named:
            body += struct.pack("<Q", len(k.encode())) + k.encode()
        return body

    for tag, v1 in (("legacy", False), ("v1", True)):
        named = {"arg:w": rng.normal(0, 1, (4, 3, 2, 2)).astype("float32"),
                 "aux:h": rng.normal(0, 1, (5,)).astype("float16"),
                 "aux:n": rng.integers(-9, 9, (2, 3)).astype("int64")}
        (folder / f"{tag}.params").write_bytes(ndarray_file(named, v1=v1))
        reference(tag, mx.nd.load(str(folder / f"{tag}.params")),
                  "hand-written " + ("V1 (magic + int64 shape)" if v1 else "pre-V1 (uint32 shape, no magic)"))
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="fixture directory (default: cache, keyed by script)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the fixtures exist")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=("models", "ops"), default="models", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.part)
        return 0
    out = build(args.out or fixtures_dir(), force=args.force)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
