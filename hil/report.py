"""Run reports: JUnit XML with properties for CI, and an HTML page with plots for people.

Per scenario the HTML shows the steps and their results, programmed vs delivered volume over time,
the reservoir with the alarm and empty thresholds and the alarm and refill dates, the trumpet-style
accuracy curve (hil/accuracy.py), and for a failure the raw serial trace (also saved beside it as
NAME.trace, so it can be replayed offline). Plots are matplotlib SVGs, inlined; no display needed.
"""

from __future__ import annotations

import html
import io
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hil.quantities import STROKE_NL
from hil.scenario import Outcome
from host_tools import NOT_A_MEDICAL_DEVICE


def junit(outcomes: list[Outcome], path: Path, props: dict) -> None:
    suite = ET.Element("testsuite", name="itbpump-hil", tests=str(len(outcomes)),
                       failures=str(sum(o.status == "failed" for o in outcomes)),
                       errors=str(sum(o.status == "error" for o in outcomes)),
                       skipped=str(sum(o.status == "skipped" for o in outcomes)),
                       time=f"{sum(o.seconds for o in outcomes):.3f}")
    ps = ET.SubElement(suite, "properties")
    for k, v in props.items():
        ET.SubElement(ps, "property", name=k, value=str(v))
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname="hil." + Path(o.file).parent.name, name=o.name,
                             file=o.file, time=f"{o.seconds:.3f}")
        cps = ET.SubElement(case, "properties")
        for k, v in {**o.props, "proves": o.proves}.items():
            ET.SubElement(cps, "property", name=k, value=str(v))
        if o.status in ("failed", "error"):
            el = ET.SubElement(case, "failure" if o.status == "failed" else "error",
                               message=o.message.splitlines()[0] if o.message else o.status)
            el.text = o.message
            ET.SubElement(case, "system-out").text = o.trace
        elif o.status == "skipped":
            ET.SubElement(case, "skipped", message=o.message)
    ET.SubElement(suite, "system-out").text = NOT_A_MEDICAL_DEVICE
    ET.indent(suite)
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def plots(o: Outcome) -> list[str]:
    """The scenario's three plots as inline SVG (none for a scenario that never sampled)."""
    if len(o.samples) < 2:
        return []
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global state, no display

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable

    def subplots():
        fig = Figure(figsize=(6.4, 3.2))
        return fig, fig.add_subplot()

    v0 = o.samples[0]["vnow"]
    hours = [(s["vnow"] - v0) / 3_600_000 for s in o.samples]
    ml = 1e-6
    out = []

    fig = Figure(figsize=(6.4, 4.2))
    ax, diff = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    delivered = [s["pumped_nl"] - s["primed_nl"] for s in o.samples]
    ax.plot(hours, [p * ml for p in o.programmed], label="programmed", color="#1f77b4", lw=3, alpha=0.5)
    ax.plot(hours, [d * ml for d in delivered], label="delivered (fixture strokes)", color="#d62728", lw=1.2, ls="--")
    ax.plot(hours, [s["primed_nl"] * ml for s in o.samples], label="priming (dead volume)", color="#7f7f7f", lw=1)
    _label(ax, "Programmed vs delivered volume", None, "volume (mL)")
    diff.plot(hours, [(d - p) / STROKE_NL for d, p in zip(delivered, o.programmed)], color="#d62728", lw=1)
    diff.axhline(0, color="black", lw=0.8)
    diff.set_ylabel("delivered -\nprogrammed\n(strokes)", fontsize=8)
    diff.set_xlabel("time (h)")
    diff.grid(alpha=0.3)
    out.append(_svg(fig))

    fig, ax = subplots()
    ax.plot(hours, [s["reservoir_nl"] * ml for s in o.samples], color="#2ca02c", lw=2, label="reservoir (pump estimate)")
    low, empty = o.thresholds.get("low_reservoir_nl"), o.thresholds.get("empty_nl")
    if low:
        ax.axhline(low * ml, color="#ff7f0e", ls="--", lw=1, label=f"low-reservoir alarm {low * ml:.1f} mL")
    if empty:
        ax.axhline(empty * ml, color="#d62728", ls="--", lw=1, label=f"empty {empty * ml:.1f} mL")
    for key, color in (("alarm_date", "#ff7f0e"), ("refill_date", "#d62728")):
        at = o.dates.get(key)
        if at is None:
            continue
        label = f"{key.replace('_', ' ')} as predicted (+{at:.0f} h)"
        if at <= hours[-1] * 1.05:
            ax.axvline(at, color=color, ls=":", lw=1.2, label=label)
        else:
            ax.plot([], [], color=color, ls=":", label=label + ", after the run")
    _label(ax, "Reservoir", "time (h)", "volume (mL)")
    out.append(_svg(fig))

    if o.accuracy:
        fig, ax = subplots()
        w = [a[0] for a in o.accuracy]
        ax.plot(w, [a[1] for a in o.accuracy], "o-", color="#9467bd", label="max deviation")
        ax.plot(w, [a[2] for a in o.accuracy], "o-", color="#8c564b", label="min deviation")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        _label(ax, "Delivery accuracy (trumpet curve)", "observation window (h)", "delivered vs programmed (%)")
        out.append(_svg(fig))
    return out


def _label(ax, title: str, xlabel: str | None, ylabel: str) -> None:
    ax.set_title(title)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1400px} h2{margin-top:2em}
.passed{color:#1a7f37}.failed,.error{color:#cf222e}.skipped{color:#9a6700}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.summary td:nth-child(3){white-space:nowrap}
td code{white-space:pre-wrap;word-break:break-word}table{max-width:100%}
.plots{display:flex;flex-wrap:wrap;gap:8px}.plots svg{width:440px;height:auto}
pre{background:#f6f8fa;padding:8px;max-height:300px;overflow:auto;font-size:11px}"""


def html_report(outcomes: list[Outcome], path: Path, props: dict, jobs: int = 1) -> None:
    """The run's page; plots are drawn in `jobs` processes (drawing is most of the report's time)."""
    e = html.escape
    if jobs > 1 and len(outcomes) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            drawn = list(pool.map(plots, outcomes, chunksize=4))
    else:
        drawn = [plots(o) for o in outcomes]
    parts = [f"<!doctype html><meta charset='utf-8'><title>itbpump HIL report</title><style>{_CSS}</style>",
             "<h1>itbpump HIL report</h1>",
             "<p>" + ", ".join(f"{e(k)}: <b>{e(str(v))}</b>" for k, v in props.items()) + "</p>",
             "<table class='summary'><tr><th>scenario</th><th>result</th><th>time</th><th>proves</th></tr>"]
    for o in outcomes:
        why = f"<br><small>{e(o.message)}</small>" if o.status == "skipped" and o.message else ""
        parts.append(f"<tr><td><a href='#{e(o.name)}'>{e(o.name)}</a></td><td class='{o.status}'>{o.status}{why}</td>"
                     f"<td>{o.seconds:.1f} s</td><td>{e(o.proves)}</td></tr>")
    parts.append("</table>")
    for o, svgs in zip(outcomes, drawn):
        parts.append(f"<h2 id='{e(o.name)}'>{e(o.name)} <span class='{o.status}'>{o.status}</span></h2>"
                     f"<p>{e(o.proves)}<br><small>{e(o.file)}</small></p>")
        if o.message:
            parts.append(f"<p class='{o.status}'>{e(o.message)}</p>")
        if o.steps:
            parts.append("<table><tr><th>#</th><th>at (h)</th><th>step</th><th>result</th></tr>")
        for s in o.steps:
            res = "not run" if s.ok is None else "ok" if s.ok else "FAILED: " + s.message
            cls = "" if s.ok is None else "passed" if s.ok else "failed"
            parts.append(f"<tr><td>{s.i}</td><td>{s.hours:.1f}</td><td><code>{e(s.text)}</code></td>"
                         f"<td class='{cls}'>{e(res)}</td></tr>")
        parts.append(("</table>" if o.steps else "") + "<div class='plots'>" + "".join(svgs) + "</div>")
        if o.status in ("failed", "error"):
            trace = path.parent / f"{o.name}.trace"
            trace.write_text(o.trace)
            parts.append(f"<p>Serial trace (<a href='{e(trace.name)}'>{e(trace.name)}</a>; '&gt;' to the pump, "
                         f"'&lt;' from it, hex):</p><pre>{e(o.trace[-20000:])}</pre>")
    parts.append(f"<footer><p><small>{e(NOT_A_MEDICAL_DEVICE)}</small></p></footer>")
    path.write_text("\n".join(parts))
