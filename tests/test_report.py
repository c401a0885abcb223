"""The HTML report (saddlescope.report): content, escaping, no URL, and headless Chromium.

The Chromium tests render the page with Debian's ``chromium`` (skipped only when it is not
installed). "No external request" is checked two ways: the page holds no URL at all and a
Content-Security-Policy that forbids every request (unit tests below), and Chromium's own network
log (``--log-net-log``) of the rendering shows no request made by the page. Chromium's
browser-level traffic (time queries, account checks) is in that log too, with no initiator
("not an origin"); a request the page makes carries the page's origin ("null" for file://) and
the file:// network partition, so that is what the test looks for. A control page that does
load an image (from a port nothing serves) shows that the log catches such a request. All
host names resolve to nothing during these runs (``--host-resolver-rules``), so nothing leaves
the machine.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import saddlescope
from saddlescope import InvalidInputError, render_report, toy, write_report
from saddlescope.analysis import FORMAT, analyze
from saddlescope.cli import cli
from saddlescope.report import CSP, read_record
from saddlescope.report.figures import draw
from saddlescope.report.values import MAX_POINTS

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'
SECTIONS = ("verdict", "extremes", "escape", "density", "landscape", "computation", "description")


def realistic_record() -> dict:
    """A BERT-sized saddle: a density with a bulk near zero and outliers, a saddle-shaped line."""
    grid = [-1.3 + 2.6 * i / 399 for i in range(400)]

    def bump(x: float, centre: float, width: float, mass: float) -> float:
        return (
            mass * math.exp(-0.5 * ((x - centre) / width) ** 2) / (width * math.sqrt(2 * math.pi))
        )

    outliers = [(-1.18, 2e-4), (-0.62, 3e-4), (0.71, 3e-4), (0.95, 2e-4), (1.20, 2e-4)]
    values = [
        bump(x, 0.0, 0.012, 0.9) + bump(x, 0.05, 0.08, 0.0988)
        + sum(bump(x, c, 0.015, m) for c, m in outliers)
        for x in grid
    ]  # fmt: skip
    t = [-0.45 + 0.9 * i / 40 for i in range(41)]
    loss0, lam, slope = 1.0986, -1.18, -2e-6
    return {
        "format": FORMAT,
        "saddlescope_version": "0.1.0",
        "created": "2026-12-03T10:00:00+00:00",
        "model": {"factory": "examples.factories:tiny_bert", "checkpoint": None,
                  "num_params": 25795, "param_filter": None, "loss": "the model's own"},
        "data": {"factory": "examples.factories:bert_batches", "num_batches": 4,
                 "num_samples": 64, "streamed": False},
        "objective": {"num_params": 25795, "num_samples": 64, "num_batches": 4,
                      "total_weight": 64.0, "streamed": False, "dtype": "float32",
                      "device": "cpu", "norm_stats": "running"},
        "verdict": {"kind": "saddle", "strict": None,
                    "resolution": "second-order test: eigenvalues of both signs",
                    "loss": loss0, "grad_norm": 3.2e-6,
                    "tolerance": {"grad_tol": 1e-5, "rtol": 1e-3, "atol": 0.0},
                    "threshold": 1.2e-3, "index": 0.12, "index_err": 0.01,
                    "minimum_ratio": 0.8, "minimum_ratio_err": 0.02, "is_estimate": True,
                    "confidence": 0.95,
                    "inertia": {"n_neg": 3095, "n_zero": 2064, "n_pos": 20636}},
        "extremes": [{"end": "lowest", "value": -1.18, "residual": 2e-4},
                     {"end": "lowest", "value": -0.62, "residual": 3e-4},
                     {"end": "highest", "value": 0.95, "residual": 2e-4},
                     {"end": "highest", "value": 1.20, "residual": 1e-4}],
        "path": {"method": "lanczos", "why": "dense would take ~25795 products (≈ 12 min at "
                 "28 ms); Lanczos k=6 ≈ 60 products", "hvps": 180, "seconds": 6.3},
        "escape": {"curvature": lam, "predicted_decrease_at_unit_step": lam / 2,
                   "higher_order": False},
        "density": {"grid": grid, "values": values, "source": "slq", "probes": 10,
                    "lanczos_steps": 40, "hvps": 400},
        "landscape": {"t": t,
                      "loss": [loss0 + slope * s + 0.5 * lam * s * s + 2.2 * s**4 for s in t],
                      "quadratic": [loss0 + slope * s + 0.5 * lam * s * s for s in t]},
        "stages": [{"name": "gradient", "seconds": 0.1}, {"name": "spectrum", "seconds": 3.2},
                   {"name": "density", "seconds": 2.9}, {"name": "landscape", "seconds": 0.4}],
    }  # fmt: skip


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


_ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section",
    "h1", "h2", "h3", "p", "div", "span", "table", "tr", "th", "td", "code", "input", "label",
    "svg", "g", "path", "defs", "use", "clippath", "text", "tspan", "rect", "polyline", "line",
}  # fmt: skip


def _assert_inert(page: str) -> _Tags:
    """No script, no event handler, no tag outside the report's own set, no URL to load."""
    parsed = _Tags(page)
    for tag, attrs in parsed.tags:
        assert tag in _ALLOWED_TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                assert value is not None and value.startswith("#"), (tag, name, value)
    assert "url(" not in page.replace("url(#", "")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*//""", page)
    return parsed


def test_the_verdict_is_at_the_top_with_bars_and_tolerances():
    page = render_report(realistic_record())
    positions = [page.index(f'<section id="{s}">') for s in SECTIONS]
    assert positions == sorted(positions)
    verdict = page[positions[0] : positions[1]]
    assert ">saddle<" in verdict and "kind-saddle" in verdict
    assert "second-order test: eigenvalues of both signs" in verdict
    assert "1.0986" in verdict
    assert "3.2e-06 ≤ grad_tol 1e-05" in verdict and ">critical<" in verdict
    assert ">0.12 ± 0.01<" in verdict and ">0.8 ± 0.02<" in verdict
    assert "SLQ estimate, 95% confidence" in verdict
    assert "(3,095, 2,064, 20,636) estimated" in verdict
    assert "|λ| ≤ 0.0012" in verdict and "rtol 0.001" in verdict
    # the ± bar of the index: 11 % to 13 % of a 0–1 meter, the mark at 12 %
    assert 'class="band" style="left:11.00%;width:2.00%"' in verdict
    assert 'class="mark" style="left:12.00%"' in verdict


def test_extremes_escape_density_landscape_and_computation():
    page = render_report(realistic_record())
    row = '<td>lowest</td><td>-1.18</td><td>0.0002</td><td><span class="sign-negative">'
    assert row in page
    assert "curvature uᵀHu</th><td>-1.18" in page and "-0.59" in page
    assert "10 probes × 40 Lanczos steps, 400 Hessian-vector products" in page
    assert page.count("<svg") == 3  # density linear, density log, landscape
    assert "Lanczos k=6 ≈ 60 products" in page and "spectrum</td><td>3.2 s" in page
    assert 'class="total"><td>total</td><td>6.6 s' in page
    assert "examples.factories:tiny_bert" in page and "norm_stats" in page


def test_the_density_switch_needs_no_script_and_ids_are_unique():
    page = render_report(realistic_record())
    assert '<input type="radio" name="density-scale" id="density-linear" checked>' in page
    assert '<input type="radio" name="density-scale" id="density-log">' in page
    assert "#density-log:checked ~ .fig-log { display: block; }" in page
    assert "density (log scale)" in page and "density (linear scale)" in page  # axis labels
    ids = [a["id"] for _, a in _Tags(page).tags if "id" in a]
    assert len(ids) == len(set(ids)) and len(ids) > 50
    refs = set(re.findall(r'href="#([^"]+)"', page)) | set(re.findall(r"url\(#([^)]+)\)", page))
    assert refs and refs <= set(ids)  # every reference inside a figure resolves
    assert render_report(realistic_record()) == page  # deterministic (fixed hash salts)


def test_the_page_is_inert_and_forbids_requests():
    page = render_report(realistic_record())
    _assert_inert(page)
    head = page[: page.index("</head>")]
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in head
    assert head.index("Content-Security-Policy") < head.index("<style>")
    assert "default-src 'none'" in CSP and "img-src data:" in CSP
    assert "<script" not in page.lower()


def _hostile_record() -> dict:
    r = realistic_record()
    for section in ("model", "data", "objective"):
        r[section]["factory" if section != "objective" else "device"] = HOSTILE + HOSTILE_ATTR
        r[section][HOSTILE_ATTR] = HOSTILE  # keys are record text too
    r["created"] = HOSTILE
    r["saddlescope_version"] = HOSTILE_ATTR
    r["verdict"]["kind"] = HOSTILE_ATTR
    r["verdict"]["resolution"] = HOSTILE
    r["verdict"]["loss"] = HOSTILE  # a string where a number belongs
    r["verdict"]["strict"] = HOSTILE_ATTR
    r["verdict"]["inertia"] = {"n_neg": HOSTILE, "n_zero": 1, "n_pos": 2}
    r["extremes"][0]["end"] = HOSTILE
    r["extremes"].append(HOSTILE_ATTR)
    r["path"]["method"], r["path"]["why"] = HOSTILE, HOSTILE_ATTR
    r["escape"]["higher_order"] = HOSTILE
    r["density"]["source"] = HOSTILE_ATTR
    r["stages"][0]["name"] = HOSTILE
    r["stages"].append({"name": HOSTILE_ATTR, "seconds": HOSTILE})
    return r


def test_every_string_from_the_record_is_escaped():
    page = render_report(_hostile_record())
    parsed = _assert_inert(page)
    assert HOSTILE not in page and HOSTILE_ATTR not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert not any(tag in ("script", "img") for tag, _ in parsed.tags)
    text = "".join(parsed.text)
    assert HOSTILE in text and HOSTILE_ATTR in text  # shown as text, as written
    assert "kind-other" in page  # an unknown kind gets no class from the record
    assert page.count('class="invalid"') >= 5  # loss, strict, n_neg, higher_order, seconds


def test_a_record_with_only_its_format_says_what_is_missing():
    for record in ({"format": FORMAT}, {"format": FORMAT, **dict.fromkeys(SECTIONS)}):
        page = render_report(record)
        _assert_inert(page)
        for s in SECTIONS:
            assert f'<section id="{s}">' in page
        assert "No verdict: not in this record." in page
        assert "No eigenvalues in this record." in page
        assert "No spectral density: not in this record." in page
        assert "No landscape: not in this record." in page
        assert "No stage timings in this record." in page
        assert "<svg" not in page


@pytest.mark.parametrize(
    ("density", "message"),
    [
        ({"grid": [0.0, 1.0, "x"], "values": [1.0, 1.0, 1.0]}, "grid has 1 entries that are not"),
        ({"grid": [0.0, 1.0, 2.0], "values": [1.0, 1.0]}, "grid has 3 points but values 2"),
        ({"grid": [0.0, 1.0], "values": [1.0, float("nan")]}, "values has 1 non-finite"),
        ({"grid": [0.0, 1.0], "values": [1.0, -1.0]}, "negative entries"),
        ({"grid": [0.0, 1.0], "values": [0.0, 0.0]}, "values are all zero"),
        ({"grid": [1.0, 0.0], "values": [1.0, 1.0]}, "grid is not increasing"),
        ({"grid": [0.0], "values": [1.0]}, "grid has 1 points (need 2"),
        ({"grid": "0 1", "values": [1.0, 1.0]}, "grid is missing or not a list"),
        ({"grid": [True, False], "values": [1.0, 1.0]}, "grid has 2 entries that are not"),
        ({"grid": list(range(MAX_POINTS + 1)), "values": [1.0]}, "grid has 100001 points"),
    ],
)
def test_a_density_that_cannot_be_drawn_is_explained(density, message):
    r = realistic_record()
    r["density"] = density
    page = render_report(r)
    section = page[page.index('<section id="density">') : page.index('<section id="landscape">')]
    assert "Not drawn:" in section and message in section and "<svg" not in section
    assert page.count("<svg") == 1  # the landscape is still drawn


def test_a_landscape_that_cannot_be_drawn_is_explained():
    r = realistic_record()
    r["landscape"]["loss"] = r["landscape"]["loss"][:-1]
    assert "Not drawn: t has 41 points but loss 40." in render_report(r)
    r = realistic_record()
    r["landscape"]["quadratic"] = [math.inf] * 41
    page = render_report(r)
    assert page.count("<svg") == 3 and "Quadratic model not drawn: quadratic has 41 non-finite"
    r["landscape"] = [1, 2]
    assert "No landscape: malformed (a list, not an object)." in render_report(r)


def test_wrong_numbers_show_as_invalid_not_as_a_crash():
    r = realistic_record()
    v = r["verdict"]
    v["grad_norm"], v["index"], v["index_err"], v["threshold"] = [1], math.nan, "x", True
    v["tolerance"] = "tight"
    r["extremes"][1]["value"] = {"a": 1}
    r["model"]["num_params"] = 10**400  # beyond float
    page = render_report(r)
    assert "invalid ([1])" in page and 'title="not finite">nan<' in page
    assert "invalid (True)" in page and "invalid ({&#x27;a&#x27;: 1})" in page
    _assert_inert(page)


def test_values_no_axis_can_show_are_explained():
    r = realistic_record()
    r["density"] = {"grid": [0.0, 1e300], "values": [1.0, 1.0]}
    r["landscape"]["t"][0] = -1.7e308
    page = render_report(r)
    assert "Not drawn: grid has 1 values beyond ±1e+100." in page
    assert "Not drawn: t has 1 values beyond ±1e+100." in page and "<svg" not in page

    def broken(*args):
        raise ValueError("Axis limits cannot be NaN or Inf")

    assert draw(broken, 1) == (
        None, "matplotlib could not draw it (ValueError: Axis limits cannot be NaN or Inf)"
    )  # fmt: skip


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from([HOSTILE, HOSTILE_ATTR, "saddle", "lowest"]),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip


@st.composite
def _mangled_records(draw_):
    """The realistic record with some sections, and some fields in the others, replaced."""
    r = realistic_record()
    for key in sorted(set(r) - {"format"}):
        choice = draw_(st.sampled_from(["keep", "replace", "fields"]))
        if choice == "replace":
            r[key] = draw_(_JSON)
        elif choice == "fields" and isinstance(r[key], dict):
            for field in draw_(st.lists(st.sampled_from(sorted(r[key])), max_size=3)):
                r[key][field] = draw_(_JSON)
    return r


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mangled_records())
def test_any_mangled_record_renders_an_inert_page(record):
    _assert_inert(render_report(record))


def test_something_that_is_not_an_analysis_is_refused(tmp_path):
    for bad, words in (
        ([1, 2], "must be a JSON object"),
        ({"verdict": {}}, "format is missing"),
        ({"format": "saddlescope.survey/1"}, "'saddlescope.survey/1', expected"),
    ):
        with pytest.raises(InvalidInputError, match=re.escape(words)):
            render_report(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            write_report(bad, tmp_path / "never.html")  # type: ignore[arg-type]
    assert not (tmp_path / "never.html").exists()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not a readable JSON file"):
        read_record(tmp_path / "bad.json")


def test_write_report_and_the_report_command(tmp_path):
    record = realistic_record()
    (tmp_path / "a.json").write_text(json.dumps(record), encoding="utf-8")
    out = write_report(record, tmp_path / "deep" / "a.html")
    assert out.read_text(encoding="utf-8") == render_report(record)
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "a.json"), "--html",
                                      str(tmp_path / "b.html")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b.html").read_text(encoding="utf-8") == render_report(record)
    (tmp_path / "c.json").write_text(json.dumps({"format": "other"}))
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "c.json"), "--html", "x.html"])
    assert result.exit_code != 0 and isinstance(result.exception, InvalidInputError)
    assert saddlescope.render_report is render_report and "write_report" in saddlescope.__all__


def test_a_real_analysis_renders():
    a = analyze(toy.worked_example_objective(), torch.zeros(2))
    record = json.loads(json.dumps(a.to_dict()))
    page = render_report(record)
    _assert_inert(page)
    assert ">saddle<" in page and "exact (complete spectrum)" in page
    assert "(1, 0, 1)" in page and page.count("<svg") == 3
    assert "complete Gaussian" not in page and "the complete spectrum, each eigenvalue" in page


# -- headless Chromium -----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)


def _chromium(page: Path, tmp: Path, *extra: str) -> tuple[str, list[dict]]:
    """Render ``page`` headless: the DOM, and the page's own requests from the network log."""
    netlog = tmp / "net.json"
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}", "--dump-dom", *extra, page.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, _page_requests(netlog.read_text(encoding="utf-8"))


def _page_requests(log: str) -> list[dict]:
    """The URL requests a page made: those with an initiator (browser traffic has none)."""
    try:
        events = json.loads(log)["events"]
    except json.JSONDecodeError:  # a log cut at exit: close its event list
        events = json.loads(log.rstrip().rstrip(",") + "]}")["events"]
    starts = [e.get("params", {}) for e in events if "initiator" in e.get("params", {})]
    assert starts, "the network log has no request at all: is it being written?"
    return [
        p for p in starts
        if p["initiator"] != "not an origin" or "file://" in p.get("network_isolation_key", "")
    ]  # fmt: skip


def _blank(png: Path) -> bool:
    from PIL import Image, ImageStat

    with Image.open(png) as im:
        grey = im.convert("L")
        dark = sum(grey.histogram()[:200])  # pixels clearly darker than the page
        return ImageStat.Stat(grey).stddev[0] < 5 or dark < 0.01 * grey.width * grey.height


@needs_chromium
def test_chromium_renders_the_verdict_offline_with_no_request(tmp_path):
    page = write_report(realistic_record(), tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    dom, requests = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000")
    assert requests == []
    assert '<section id="verdict">' in dom and ">saddle<" in dom and "0.12 ± 0.01" in dom
    assert "<script" not in dom.lower()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
    assert not _blank(shot)


@needs_chromium
def test_the_request_check_catches_a_page_that_loads_something(tmp_path):
    """The control: a page (not the report) with an image on a port nothing serves."""
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>control</p><img src="http://127.0.0.1:9/probe.png">')
    _, requests = _chromium(control, tmp_path)
    assert [p["url"] for p in requests] == ["http://127.0.0.1:9/probe.png"]


def test_the_blank_check_knows_a_blank_page(tmp_path):
    from PIL import Image

    Image.new("RGB", (120, 200), "white").save(tmp_path / "white.png")
    assert _blank(tmp_path / "white.png")
