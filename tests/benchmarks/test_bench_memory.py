"""Peak RSS from a fresh child: real child processes, real MNN / ONNX Runtime sessions."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.benchmarks.memory import parse_child_output, peak_rss
from edgepose.benchmarks.reference import reference_files
from edgepose.benchmarks.variants import parse_variant


@pytest.fixture(scope="module")
def ref_files(tmp_path_factory):
    return reference_files(tmp_path_factory.mktemp("bench-cache"))


def test_parse_child_output():
    rss = parse_child_output('noise\nEDGEPOSE_RSS {"baseline_kb": 1024, "loaded_kb": 3072, "peak_kb": 4096}\n')
    assert (rss.baseline_mb, rss.loaded_mb, rss.peak_mb, rss.model_mb) == (1.0, 3.0, 4.0, 3.0)
    with pytest.raises(RuntimeError, match="printed no result"):
        parse_child_output("crashed")


@pytest.mark.parametrize("variant,key", [("mnn-fp32", "ref-mnn"), ("ort-fp32", "ref-ort")])
def test_peak_rss_counts_the_model(ref_files, variant, key):
    rss = peak_rss(ref_files[key], parse_variant(variant), calls=2)
    weights_mb = ref_files[key].stat().st_size / 2**20  # 8 x 256 x 256 fp32 = 2 MiB of weights
    assert 0 < rss.baseline_mb <= rss.loaded_mb <= rss.peak_mb
    assert rss.model_mb >= weights_mb  # loading keeps at least the weights resident


def test_a_large_parent_does_not_inflate_the_child(ref_files):
    """ru_maxrss would carry this process's peak into the child; VmHWM does not."""
    ballast = np.ones(400 * 2**20 // 8)  # 400 MiB, touched
    rss = peak_rss(ref_files["ref-mnn"], parse_variant("mnn-fp32"), calls=1)
    assert ballast.sum() > 0
    assert rss.peak_mb < 300
