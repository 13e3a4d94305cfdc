"""Table A, claims, Markdown/JSON/PNG reports and the normalised baseline, on chosen samples."""
from __future__ import annotations

import json

import pytest

from edgepose.benchmarks import baseline as bl
from edgepose.benchmarks.report import write_reports
from edgepose.benchmarks.table_a import build_table_a

# Load swings 2x between rounds; per-round ratios are exact: heatmap 5x, simdr_320 2x, x2 2.2x, ipr 1.05x.
LOAD = [1.0, 2.0, 1.0, 2.0, 1.5]
MS = {"deeppose": [6 * f for f in LOAD], "heatmap": [30 * f for f in LOAD], "simdr_320": [12 * f for f in LOAD],
      "deeppose_x2": [13.2 * f for f in LOAD], "ipr": [6.3 * f for f in LOAD]}


def test_table_a_ratios_ranks_and_claims(make_result):
    table = build_table_a(make_result(MS))
    by = {r.model: r for r in table.rows}
    assert table.variant == "mnn-fp16@normal"
    assert by["heatmap"].measured_ratio == pytest.approx(5.0)
    assert by["ipr"].measured_ratio == pytest.approx(1.05)
    assert by["heatmap"].published_ratio == pytest.approx(34.76 / 6.74)
    assert [by[m].measured_rank for m in ("deeppose", "ipr", "simdr_320", "deeppose_x2", "heatmap")] == [1, 2, 3, 4, 5]
    claims = {c.id: c for c in table.claims}
    assert claims["final_vs_heatmap"].measured == pytest.approx(2.5) and claims["final_vs_heatmap"].holds
    assert claims["integral_vs_deeppose"].holds
    assert claims["width_x2_cost"].holds and claims["heatmap_vs_deeppose"].holds
    assert claims["final_vs_heatmap"].published == pytest.approx(34.76 / 12.33)


def test_claims_can_fail_and_be_missing(make_result):
    ms = {"deeppose": [6.0] * 3, "heatmap": [12.0] * 3, "deeppose_x2": [9.0] * 3}
    claims = {c.id: c for c in build_table_a(make_result(ms)).claims}
    assert claims["width_x2_cost"].holds is False and claims["heatmap_vs_deeppose"].holds is False
    assert claims["final_vs_heatmap"].holds is None and claims["integral_vs_deeppose"].measured is None


def test_no_table_without_the_baseline_row(make_result):
    assert build_table_a(make_result({"heatmap": [30.0, 31.0]})) is None


def test_reports_written(tmp_path, make_result):
    predict = {m: [v * 1.04 for v in s] for m, s in MS.items()}
    result = make_result(MS, predict=predict)
    paths = write_reports(result, tmp_path)
    md = paths["markdown"].read_text()
    assert "Table A reproduced" in md and "| heatmap |" in md and "+4.0%" in md
    data = json.loads(paths["json"].read_text())
    assert len(data["rows"]) == 5 and data["table_a"]["variant"] == "mnn-fp16@normal"
    row = next(r for r in data["rows"] if r["model"] == "heatmap")
    assert row["gflops"] == pytest.approx(2 * 1e8 / (45.0 * 1e6))  # median of 30 x LOAD is 45 ms
    assert paths["table_a_png"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("current,spread,base,lenient,verdict", [
    (1.0, 0.02, 1.0, False, "ok"),
    (1.5, 0.02, 1.0, False, "slower"),
    (1.5, 0.50, 1.0, False, "warn"),     # noisy run, below twice the threshold
    (1.7, 0.50, 1.0, False, "slower"),   # noisy run, beyond twice the threshold
    (1.7, 0.50, 1.0, True, "warn"),      # lenient: noisy runs never fail
    (1.5, 0.02, 1.0, True, "slower"),
    (0.5, 0.02, 1.0, False, "faster"),
    (1.0, 0.02, None, False, "new"),
])
def test_judge(current, spread, base, lenient, verdict):
    assert bl.judge(current, spread, base, threshold=0.3, lenient=lenient)[0] == verdict


def test_baseline_round_trip_and_compare(tmp_path, make_result):
    path = tmp_path / "base.json"
    ref = [10.0, 20.0, 10.0, 20.0]
    before = make_result({"deeppose": [5.0, 10.0, 5.0, 10.0], "heatmap": [30.0, 60.0, 30.0, 60.0]}, ref=ref)
    bl.save_baseline(before, path)
    data = bl.load_baseline(path)
    assert data["entries"]["deeppose|mnn-fp16@normal"]["normalised"] == pytest.approx(0.5)
    # A machine twice as fast: ms halve, the reference too -> normalised unchanged -> ok.
    faster_machine = make_result({"deeppose": [2.5, 5.0, 2.5, 5.0], "heatmap": [15.0, 30.0, 15.0, 30.0]},
                                 ref=[5.0, 10.0, 5.0, 10.0])
    assert {c.status for c in bl.compare(faster_machine, data)} == {"ok"}
    # heatmap 50 % slower relative to the reference -> slower (fails); deeppose ok.
    regressed = make_result({"deeppose": [5.0, 10.0, 5.0, 10.0], "heatmap": [45.0, 90.0, 45.0, 90.0]}, ref=ref)
    verdicts = {c.key: c.status for c in bl.compare(regressed, data)}
    assert verdicts == {"deeppose|mnn-fp16@normal": "ok", "heatmap|mnn-fp16@normal": "slower"}
    # merge keeps other entries
    bl.save_baseline(make_result({"ipr": [1.0, 2.0, 1.0, 2.0]}, ref=ref), path)
    assert set(bl.load_baseline(path)["entries"]) == {"deeppose|mnn-fp16@normal", "heatmap|mnn-fp16@normal",
                                                      "ipr|mnn-fp16@normal"}


def test_foreign_baseline_file_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"schema": "something else"}))
    with pytest.raises(ValueError, match="not an edgepose benchmark baseline"):
        bl.load_baseline(path)


def test_a_new_table_is_one_entry_in_TABLES(tmp_path, make_result, monkeypatch):
    """report.md, report.json and <name>.{md,json} all come from the TABLES loop."""
    from edgepose.benchmarks import report

    class RowCount:
        def __init__(self, n: int) -> None:
            self.n = n

        def markdown(self) -> str:
            return f"### Table Z: {self.n} rows\n"

        def to_dict(self) -> dict:
            return {"rows": self.n}

        def to_json(self) -> str:
            return json.dumps(self.to_dict())

    assert [name for name, _ in report.TABLES] == ["table_a", "table_b", "table_c"]
    monkeypatch.setattr(report, "TABLES", (*report.TABLES, ("table_z", lambda result, v: RowCount(len(result.rows)))))
    paths = write_reports(make_result(MS), tmp_path)
    assert json.loads(paths["table_z_json"].read_text()) == {"rows": 5} == json.loads(paths["json"].read_text())["table_z"]
    md = paths["markdown"].read_text()
    assert "### Table Z: 5 rows" in md and md.index("Table A reproduced") < md.index("Table Z")
    assert paths["table_z_markdown"].read_text() == "### Table Z: 5 rows\n" and "table_z_png" not in paths
