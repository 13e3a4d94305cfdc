"""Mutation fuzz of the metadata parser and the decoders that read it.

Each mutant of a real model card (the presets: BlazePose landmarks, MediaPipe's SSD detector, a
SimplePose heatmap card, the hand landmark card) is parsed with `ModelSpec.from_json`; a card
that is accepted is then decoded on synthetic outputs of the shapes it describes. The only
acceptable outcomes are a result or an edgepose error: a ZeroDivisionError, a RecursionError,
a MemoryError or a NaN in the JSON output is a finding.

Mutants are structural (a leaf or a container of the parsed card replaced by a hostile value:
0, -1, 1e-300, 1e300, 10**30, NaN via the text, "", [], {}, deep nesting...) or textual
(bytes flipped, cut, or tokens such as NaN / Infinity / 1e999 / [[[[ spliced in).

    python tests/reliability/metadata_fuzz.py --count 1000     # the full run (the tests run a sample)
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from typing import Any

import numpy as np

HOSTILE = [0, -1, 1, 2, 7, 1e-300, 1e300, -1e300, 10 ** 30, -(10 ** 30), 0.5, 1e-7, "", "x", "nan", "inf",
           [], {}, None, True, False, [0], [0, 0], [1e300, 1e300], [[1, 2]], {"a": 1}, [-1, -1, -1, -1],
           "\x1b[31m", "\u202e", 65536, 200000, [200000, 200000], [0.0, 0.0, 0.0], [1e-300] * 3]
TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[[[[", "]]]]", "{", "}", ",", ":", "\"",
          "\\u0000", "\\ud800", "\x00", "\x1b", "0", "-", "null", "true", "9" * 400]
PRESET_NAMES = ("blazepose_full", "blazepose_detector", "simple_pose_resnet18_v1b", "hand_landmark_lite")


def cards() -> list[dict]:
    from edgepose.presets import get_preset

    return [get_preset(n).to_dict() for n in PRESET_NAMES]


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _leaves(v, path + (i,))
    return out


def _set(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        out[head] = _set(value[head], rest, new)
        return out
    out = list(value)
    out[head] = _set(value[head], rest, new)
    return out


def mutate(card: dict, seed: int, index: int) -> tuple[str, str]:
    """(description, JSON text) of mutant `index`."""
    rng = random.Random(f"meta:{seed}:{index}")
    kind = rng.choice(["leaf", "leaf", "leaf", "two-leaves", "text", "nest", "drop"])
    if kind in ("leaf", "two-leaves"):
        data, desc = card, []
        for _ in range(1 if kind == "leaf" else 2):
            path = rng.choice(_leaves(data)[1:])
            value = rng.choice(HOSTILE)
            data = _set(data, path, value)
            desc.append(f"{'.'.join(map(str, path))}={value!r}"[:80])
        return f"{kind}:{';'.join(desc)}", json.dumps(data)
    if kind == "drop":
        path = rng.choice([p for p in _leaves(card)[1:] if isinstance(p[-1], str)])
        parent = card
        for k in path[:-1]:
            parent = parent[k]
        data = _set(card, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
        return f"drop:{'.'.join(map(str, path))}", json.dumps(data)
    if kind == "nest":
        depth = rng.choice([20, 100, 5000, 200000])
        path = rng.choice(_leaves(card)[1:])
        text = json.dumps(_set(card, path, "@@"))
        return f"nest:{'.'.join(map(str, path))}x{depth}", text.replace('"@@"', "[" * depth + "]" * depth, 1)
    text = json.dumps(card)
    pos = rng.randrange(len(text))
    op = rng.choice(["insert", "replace", "cut", "flip"])
    if op == "insert":
        tok = rng.choice(TOKENS)
        return f"text-insert@{pos}:{tok[:10]!r}", text[:pos] + tok + text[pos:]
    if op == "replace":
        tok = rng.choice(TOKENS)
        return f"text-replace@{pos}:{tok[:10]!r}", text[:pos] + tok + text[pos + len(tok):]
    if op == "cut":
        return f"text-cut@{pos}", text[:pos]
    ch = chr(ord(text[pos]) ^ rng.randrange(1, 128))
    return f"text-flip@{pos}", text[:pos] + ch + text[pos + 1:]


def synthetic_outputs(spec) -> dict[str, np.ndarray]:
    """Outputs of the shapes a card describes (values from a fixed generator), for its decoder."""
    rng = np.random.default_rng(0)
    k = spec.num_keypoints
    w, h = spec.input_size
    if spec.head == "landmarks":
        vpp = int(spec.decode.get("values_per_point", 3))
        out = {"landmarks": rng.uniform(0, max(w, h), (1, (k + 6) * vpp)).astype(np.float32),
               "presence": np.array([[3.0]], np.float32)}
        if spec.decode.get("heatmap_refine"):
            out["heatmap"] = rng.normal(0, 1, (1, 64, 64, k + 6)).astype(np.float32)
        return out
    if spec.head == "heatmap":
        return {"heatmaps": rng.uniform(0, 1, (1, k, max(1, h // 4), max(1, w // 4))).astype(np.float32)}
    if spec.head in ("regression", "integral"):
        return {"coords": rng.uniform(0, 1, (1, k, 2)).astype(np.float32)}
    if spec.head == "simdr":
        return {"simdr_x": rng.normal(0, 1, (1, k, 2 * w)).astype(np.float32),
                "simdr_y": rng.normal(0, 1, (1, k, 2 * h)).astype(np.float32)}
    if spec.head == "ssd":
        from edgepose.processing.ssd import ssd_anchors

        opts = dict(spec.decode.get("anchors", {}))
        opts.setdefault("input_size", spec.input_size)
        a = len(ssd_anchors(opts))
        nc = int(spec.decode.get("num_coords", 4 + 2 * k))
        return {"boxes": rng.normal(0, 10, (1, a, nc)).astype(np.float32),
                "scores": rng.normal(0, 3, (1, a, 1)).astype(np.float32)}
    raise AssertionError(spec.head)


def check_one(text: str) -> tuple[str, str]:
    """('rejected' | 'accepted' | 'decode-error', detail) or ('finding', detail)."""
    from edgepose.errors import EdgePoseError
    from edgepose.heads import HEADS
    from edgepose.spec import ModelSpec, PoseResult

    try:
        spec = ModelSpec.from_json(text, source="card")
    except EdgePoseError as exc:
        return "rejected", str(exc)[:200]
    except BaseException as exc:  # noqa: BLE001 - the finding
        return "finding", f"from_json: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        again = spec.to_json()
        json.loads(again, parse_constant=lambda t: (_ for _ in ()).throw(ValueError(t)))
    except BaseException as exc:  # noqa: BLE001
        return "finding", f"to_json: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        np.seterr(all="ignore")  # a card accepted with extreme (finite) numbers may overflow: not a crash
        outputs = synthetic_outputs(spec)
        decoder = HEADS[spec.head].resolve_decoder()
        if spec.head == "ssd":
            decoder(spec, outputs)
        else:
            xy, scores, extras = decoder(spec, outputs)
            result = PoseResult(keypoints=xy, scores=scores, bboxes=np.zeros((len(xy), 4), np.float32),
                                keypoint_names=spec.keypoint_names, extras=extras)
            json.loads(result.to_json(), parse_constant=lambda t: (_ for _ in ()).throw(ValueError(t)))
    except EdgePoseError as exc:
        return "decode-error", str(exc)[:200]
    except BaseException as exc:  # noqa: BLE001
        return "finding", f"decode: {type(exc).__name__}: {str(exc)[:200]}"
    return "accepted", ""


def run(count: int, seed: int, start: int = 0) -> tuple[Counter, list]:
    base = cards()
    outcomes: Counter = Counter()
    findings = []
    for i in range(start, start + count):
        card = base[i % len(base)]
        desc, text = mutate(card, seed, i)
        outcome, detail = check_one(text)
        outcomes[outcome] += 1
        if outcome == "finding":
            findings.append({"i": i, "card": card.get("name"), "mutation": desc, "detail": detail})
    return outcomes, findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    outcomes, findings = run(args.count, args.seed, args.start)
    if args.json:
        print(json.dumps({"outcomes": dict(outcomes), "findings": findings}))
    else:
        print(dict(outcomes))
        for f in findings:
            print("FINDING", f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
