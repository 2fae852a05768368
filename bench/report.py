"""The benchmark's results: the table, the targets, docs/performance.md and its plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import scale
from bench.measurement import Measurement

RSS_LIMIT_MIB = 150.0
SCALE_LIMIT = 1.3


@dataclass(frozen=True)
class Row:
    """One RPC at one server process count: the median round of each server."""

    rpc: str
    processes: int
    concurrency: str
    server: Measurement
    bare: Measurement
    # Summed over every round, not only the median one: an error anywhere shows.
    errors: int
    bare_errors: int
    notes: tuple[str, ...] = ()

    @property
    def ratio(self) -> float:
        return self.server.rate / self.bare.rate if self.bare.rate else math.nan


@dataclass(frozen=True)
class RssPeak:
    run: str  # which server run, e.g. "2 processes"
    pid: int
    role: str  # "main" (the process the benchmark started) or "child"
    peak_mib: float


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool | None  # None: not measured in this run


@dataclass(frozen=True)
class CostRound:
    """One GetScenario round of the telemetry cost runs: the calls, and the server's CPU."""

    measured: Measurement
    # User + system CPU seconds of the server's whole process tree over the round.
    cpu_seconds: float

    @property
    def cpu_us_per_call(self) -> float:
        """Server CPU µs per call answered with grpc-status 0."""
        return self.cpu_seconds / self.measured.ok * 1e6 if self.measured.ok else math.nan


@dataclass(frozen=True)
class TelemetryCost:
    """GetScenario against two servers, telemetry off and on, in alternating rounds."""

    processes: int
    sample: float  # OTEL_TRACES_SAMPLER_ARG of the server with telemetry on
    seconds: float  # per round
    off: Sequence[CostRound]
    on: Sequence[CostRound]
    notes: tuple[str, ...] = ()

    @staticmethod
    def _median(rounds: Sequence[CostRound], figure: Callable[[CostRound], float]) -> float:
        return statistics.median(figure(r) for r in rounds) if rounds else math.nan

    def rate(self, on: bool) -> float:
        """Median req/s of the rounds with telemetry ``on`` (or off)."""
        return self._median(self.on if on else self.off, lambda r: r.measured.rate)

    def cpu_us_per_call(self, on: bool) -> float:
        """Median server CPU µs per answered call of the rounds with telemetry ``on`` (or off)."""
        return self._median(self.on if on else self.off, lambda r: r.cpu_us_per_call)

    def errors(self, on: bool) -> int:
        """Calls that failed, over every round with telemetry ``on`` (or off)."""
        return sum(r.measured.errors for r in (self.on if on else self.off))

    @property
    def throughput_cost(self) -> float:
        """The share of GetScenario's req/s that telemetry costs: 1 − median on / median off."""
        off = self.rate(False)
        return 1 - self.rate(True) / off if off else math.nan

    @property
    def cpu_cost(self) -> float:
        """How much more server CPU a call takes with telemetry on: median on / median off − 1."""
        return self.cpu_us_per_call(True) / self.cpu_us_per_call(False) - 1

    @property
    def pair_ratios(self) -> list[float]:
        """on / off req/s of each pair of neighbouring rounds (the k-th on against the k-th off)."""
        return [
            on.measured.rate / off.measured.rate
            for off, on in zip(self.off, self.on, strict=False)
            if off.measured.rate
        ]

    @property
    def label(self) -> str:
        """What the telemetry-on server does, for a reader."""
        return f"metrics and tracing on, {_percent(self.sample)} sampled"


@dataclass
class Results:
    """Everything one run measured, and how."""

    machine: dict[str, str]
    settings: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    latencies: list[scale.Latency] = field(default_factory=list)
    rss: list[RssPeak] = field(default_factory=list)
    telemetry_cost: TelemetryCost | None = None
    # Things a reader must know to read the figures right (a server that ran fewer
    # processes than asked for, say).
    notes: list[str] = field(default_factory=list)


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _percent(fraction: float) -> str:
    """0.01 as ``1%``, 0.005 as ``0.5%``."""
    return f"{fraction * 100:g}%"


# --- targets ----------------------------------------------------------------------------


def _row(results: Results, prefix: str, processes: int) -> Row | None:
    for row in results.rows:
        if row.rpc.startswith(prefix) and row.processes == processes:
            return row
    return None


def _ratio_target(results: Results, prefix: str, processes: int, minimum: float) -> Target:
    noun = "process" if processes == 1 else "processes"
    what = f"{prefix} ≥ {minimum:.2f}× bare with {processes} {noun}"
    row = _row(results, prefix, processes)
    if row is None:
        return Target(what, "not measured", None)
    return Target(what, f"{row.ratio:.2f}×", row.ratio >= minimum and row.errors == 0)


def _latency(results: Results, question: str, size: int, call: str) -> float | None:
    for latency in results.latencies:
        if (latency.question, latency.size, latency.call) == (question, size, call):
            return latency.p50_ms
    return None


def _growth_target(results: Results, question: str, small: int, large: int, call: str) -> Target:
    what = f"{call} p50 at {large:,} {question} ≤ {SCALE_LIMIT}× at {small:,}"
    before = _latency(results, question, small, call)
    after = _latency(results, question, large, call)
    if before is None or after is None:
        return Target(what, "not measured", None)
    growth = after / before
    return Target(what, f"{_ms(after)} / {_ms(before)} ms = {growth:.2f}×", growth <= SCALE_LIMIT)


# A selective filter on a config field stays interactive on a big tenant (issue 13).
CONFIG_FILTER_LIMIT_MS = 20.0


def targets(results: Results) -> list[Target]:
    """The targets of the performance work, each with what this run measured."""
    found = [
        _ratio_target(results, "GetScenario", 2, 0.50),
        _ratio_target(results, "GetScenario", 1, 0.30),
        _ratio_target(results, "GetConfig", 2, 0.40),
    ]
    update = _row(results, "UpdateConfig", 2)
    found.append(
        Target("UpdateConfig ≥ 1,000 req/s with 2 processes", "not measured", None)
        if update is None
        else Target(
            "UpdateConfig ≥ 1,000 req/s with 2 processes",
            f"{_rate(update.server.rate)} req/s",
            update.server.rate >= 1000 and update.errors == 0,
        )
    )
    for call in (scale.FIRST_PAGE, scale.DEEP_PAGE):
        found.append(
            _growth_target(results, scale.SCENARIOS_IN_TENANT, scale.SMALL, scale.LARGE, call)
        )
    found.append(
        _growth_target(results, scale.SIMULATIONS_IN_SCENARIO, 0, scale.SIMULATIONS, scale.GET)
    )
    found.append(_config_filter_target(results))
    found.append(_telemetry_target(results))
    if results.rss:
        peak = max(results.rss, key=lambda p: p.peak_mib)
        found.append(
            Target(
                f"server RSS < {RSS_LIMIT_MIB:.0f} MiB per process",
                f"peak {peak.peak_mib:.0f} MiB ({peak.run}, pid {peak.pid})",
                peak.peak_mib < RSS_LIMIT_MIB,
            )
        )
    return found


def _config_filter_target(results: Results) -> Target:
    what = (
        f"{scale.CONFIG_FILTER} p50 at {scale.SIMULATIONS:,} simulations in the tenant"
        f" < {CONFIG_FILTER_LIMIT_MS:.0f} ms"
    )
    measured = [
        lat
        for lat in results.latencies
        if (lat.question, lat.call) == (scale.SIMULATIONS_IN_TENANT, scale.CONFIG_FILTER)
    ]
    if not measured:
        return Target(what, "not measured", None)
    p50 = measured[-1].p50_ms
    return Target(what, f"{p50:.1f} ms", p50 < CONFIG_FILTER_LIMIT_MS)


# Issue 11: metrics and tracing, when on, cost GetScenario at most this share of its req/s.
TELEMETRY_COST_LIMIT = 0.10


def _telemetry_target(results: Results) -> Target:
    what = (
        f"telemetry on costs ≤ {TELEMETRY_COST_LIMIT:.0%} of GetScenario throughput "
        f"with {_processes(2)}"
    )
    cost = results.telemetry_cost
    if cost is None:
        return Target(what, "not measured", None)
    measured = (
        f"{cost.throughput_cost:.1%} ({_percent(cost.sample)} sampled; "
        f"CPU per call {cost.cpu_cost:+.1%})"
    )
    errors = cost.errors(True) + cost.errors(False)
    if errors:
        measured += f", {errors} errors"
    met = cost.throughput_cost <= TELEMETRY_COST_LIMIT and errors == 0
    return Target(what, measured, met)


def _verdict(target: Target) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[target.met]


# --- tables -----------------------------------------------------------------------------

_LOAD_HEADER = (
    "RPC",
    "processes",
    "concurrency",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "bare req/s",
    "× bare",
)


def load_table(results: Results) -> list[tuple[str, ...]]:
    return [
        (
            row.rpc,
            str(row.processes),
            row.concurrency,
            _rate(row.server.rate),
            _ms(row.server.p50_ms),
            _ms(row.server.p99_ms),
            str(row.errors),
            _rate(row.bare.rate),
            f"{row.ratio:.2f}",
        )
        for row in results.rows
    ]


_SCALE_HEADER = ("what grows", "call", "from", "p50 ms", "to", "p50 ms", "growth")


def scale_table(results: Results) -> list[tuple[str, ...]]:
    """One line per (question, call): p50 at the smallest and the largest size measured."""
    lines = []
    seen = []
    for latency in results.latencies:
        if (latency.question, latency.call) not in seen:
            seen.append((latency.question, latency.call))
    for question, call in seen:
        sizes = sorted(
            (lat.size, lat.p50_ms)
            for lat in results.latencies
            if (lat.question, lat.call) == (question, call)
        )
        small, large = sizes[0], sizes[-1]
        growth = f"{large[1] / small[1]:.2f}×" if len(sizes) > 1 else "-"
        lines.append(
            (
                question,
                call,
                f"{small[0]:,}",
                _ms(small[1]),
                f"{large[0]:,}" if len(sizes) > 1 else "-",
                _ms(large[1]) if len(sizes) > 1 else "-",
                growth,
            )
        )
    return lines


_RSS_HEADER = ("server run", "pid", "process", "peak RSS MiB")


def rss_table(results: Results) -> list[tuple[str, ...]]:
    return [(p.run, str(p.pid), p.role, f"{p.peak_mib:.0f}") for p in results.rss]


_COST_HEADER = ("telemetry", "rounds", "req/s", "CPU µs per call", "errors")


def cost_table(cost: TelemetryCost) -> list[tuple[str, ...]]:
    """Median req/s and CPU µs per call of each server, and on over off."""
    lines = [
        (
            cost.label if on else "off",
            str(len(cost.on if on else cost.off)),
            _rate(cost.rate(on)),
            _rate(cost.cpu_us_per_call(on)),
            str(cost.errors(on)),
        )
        for on in (False, True)
    ]
    lines.append(
        (
            "on / off",
            "",
            f"{cost.rate(True) / cost.rate(False):.3f}×",
            f"{cost.cpu_us_per_call(True) / cost.cpu_us_per_call(False):.3f}×",
            "",
        )
    )
    return lines


def cost_summary(cost: TelemetryCost) -> str:
    """How the telemetry cost was measured, and the pairs' own ratios, in a sentence or two."""
    ratios = cost.pair_ratios
    pairs = (
        f" The {len(ratios)} pairs' own on/off req/s ratios: median "
        f"{statistics.median(ratios):.3f}×, from {min(ratios):.3f}× to {max(ratios):.3f}×."
        if ratios
        else ""
    )
    return (
        f"GetScenario against two servers of {_processes(cost.processes)} each on the same "
        f"database, one with telemetry off and one with {cost.label} (OTLP to a local sink), "
        f"in alternating rounds of {cost.seconds:g} s (ABBA order); medians of the rounds. "
        "CPU is user + system time of the server's process tree over a round, per call "
        f"answered with grpc-status 0.{pairs}"
    )


def _cost_notes(cost: TelemetryCost | None) -> list[str]:
    if cost is None:
        return []
    found = list(cost.notes)
    for round_ in (*cost.off, *cost.on):
        for note in round_.measured.notes:
            if f"telemetry cost: {note}" not in found:
                found.append(f"telemetry cost: {note}")
    return found


def text_table(header: Sequence[str], lines: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """Columns aligned for a terminal: the first ``text_columns`` left, figures right."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if index < text_columns else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, lines)])


def markdown_table(
    header: Sequence[str], lines: Sequence[Sequence[str]], text_columns: int = 1
) -> str:
    align = ["---"] * text_columns + ["--:"] * (len(header) - text_columns)
    rows = [header, align, *lines]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def _notes(results: Results) -> list[str]:
    by_row = [
        f"{row.rpc}, {_processes(row.processes)}: {note}"
        for row in results.rows
        for note in row.notes
    ]
    return [*results.notes, *by_row, *_cost_notes(results.telemetry_cost)]


def _processes(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


def terminal(results: Results) -> str:
    """What ``make bench`` prints at the end."""
    parts = [f"simconfig benchmark: {results.settings['database']}, {results.settings['load']}"]
    if results.rows:
        parts += ["", text_table(_LOAD_HEADER, load_table(results))]
    notes = _notes(results)
    if notes:
        parts += ["", *(f"note: {note}" for note in notes)]
    if results.latencies:
        parts += [
            "",
            "Scale (p50 of sequential calls):",
            text_table(_SCALE_HEADER, scale_table(results), 2),
        ]
    if results.rss:
        parts += ["", "Server memory:", text_table(_RSS_HEADER, rss_table(results))]
    if results.telemetry_cost is not None:
        parts += [
            "",
            "Telemetry cost (GetScenario, alternating rounds):",
            text_table(_COST_HEADER, cost_table(results.telemetry_cost)),
        ]
    parts += ["", "Targets:"]
    parts += [f"  [{_verdict(t)}] {t.what}: {t.measured}" for t in targets(results)]
    return "\n".join(parts)


# --- docs/performance.md and the plot ---------------------------------------------------


def markdown(results: Results, command: str, plot_name: str | None) -> str:
    machine = "\n".join(f"- {name}: {value}" for name, value in results.machine.items())
    settings = "\n".join(f"- {name}: {value}" for name, value in results.settings.items())
    target_lines = "\n".join(
        f"- **{_verdict(t)}** {t.what}: {t.measured}" for t in targets(results)
    )
    sections = [
        "# Performance",
        "",
        "Written by `make bench` (`bench/run.py`); every figure below comes from one run of it.",
        "The real server (`simconfig serve`) runs as its own process(es) and is driven from",
        "outside by `h2load` (reads) and a Python grpcio driver process (writes); in the same",
        "run, with the same load, a bare grpcio server (one process, 16 threads, returning a",
        "constant reply of the same size) is measured as the reference. The ratio column is",
        "the service's req/s over the bare server's. See `bench/run.py` for the method.",
        "",
        "Reproduce:",
        "",
        "```sh",
        command,
        "```",
        "",
        "## Machine",
        "",
        machine,
        "",
        "## Run",
        "",
        settings,
        "",
    ]
    if results.rows:
        sections += [
            "## Throughput and latency",
            "",
            markdown_table(_LOAD_HEADER, load_table(results)),
            "",
            "req/s counts calls answered with grpc-status 0 (median of the rounds by req/s; p50",
            "and p99 are that round's); errors are summed over all rounds.",
        ]
    notes = _notes(results)
    if notes:
        sections += ["", *(f"- {note}" for note in notes)]
    if plot_name and results.rows:
        sections += ["", f"![req/s per RPC, beside the bare grpcio server]({plot_name})"]
    if results.telemetry_cost is not None:
        sections += [
            "",
            "## Telemetry cost",
            "",
            cost_summary(results.telemetry_cost),
            "",
            markdown_table(_COST_HEADER, cost_table(results.telemetry_cost)),
        ]
    sections += ["", "## Targets", "", target_lines]
    if results.latencies:
        sections += [
            "",
            "## Scale",
            "",
            f"p50 of {scale.CALLS} sequential calls (after {scale.WARM_UP_CALLS} unmeasured) "
            "from one client process. The deep page is the page after row "
            f"{scale.DEEP_AFTER:,} at {scale.SMALL:,} scenarios and, with the same page token, "
            f"after row {scale.LARGE - scale.SMALL + scale.DEEP_AFTER:,} at {scale.LARGE:,} "
            "(the scenarios added are older).",
            "",
            markdown_table(_SCALE_HEADER, scale_table(results), 2),
        ]
    if results.rss:
        sections += [
            "",
            "## Memory",
            "",
            "Peak VmRSS of each server process, sampled every 0.5 s through the run.",
            "",
            markdown_table(_RSS_HEADER, rss_table(results)),
        ]
    return "\n".join(sections) + "\n"


def plot(results: Results, path: Path) -> None:
    """req/s of each RPC with 1 and 2 processes, beside the bare server's (log scale)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError(
            "the plot needs matplotlib: .venv/bin/pip install -c constraints.txt -e '.[bench]'"
        ) from exc
    matplotlib.use("Agg")
    from matplotlib import pyplot

    rpcs = list(dict.fromkeys(row.rpc for row in results.rows))
    counts = sorted({row.processes for row in results.rows})
    width = 0.8 / len(counts)
    figure, axes = pyplot.subplots(figsize=(10, 5.5), dpi=100)
    for offset, processes in enumerate(counts):
        rows = {row.rpc: row for row in results.rows if row.processes == processes}
        positions = [i - 0.4 + width * (offset + 0.5) for i, rpc in enumerate(rpcs) if rpc in rows]
        shown = [rows[rpc] for rpc in rpcs if rpc in rows]
        bars = axes.bar(
            positions,
            [row.server.rate for row in shown],
            width * 0.9,
            label=f"simconfig, {_processes(processes)}",
        )
        axes.bar_label(
            bars,
            labels=[f"{_rate(row.server.rate)}\n{row.ratio:.2f}×" for row in shown],
            fontsize=8,
        )
        # Each bar's own reference: the bare server measured in the same rounds.
        axes.hlines(
            [row.bare.rate for row in shown],
            [x - width * 0.45 for x in positions],
            [x + width * 0.45 for x in positions],
            colors="black",
            linestyles="dashed",
            label="bare grpcio server, same rounds" if offset == 0 else None,
        )
        for x, row in zip(positions, shown, strict=True):
            axes.annotate(
                _rate(row.bare.rate),
                (x, row.bare.rate),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=7,
            )
    axes.set_yscale("log")
    rates = [rate for row in results.rows for rate in (row.server.rate, row.bare.rate) if rate > 0]
    axes.set_ylim(min(rates) / 2, max(rates) * 2)  # room for the labels
    axes.set_ylabel("calls per second (log scale)")
    axes.set_xticks(range(len(rpcs)), [rpc.replace(" (", "\n(") for rpc in rpcs], fontsize=9)
    axes.set_title(
        f"simconfig on {results.settings['database']}: {results.settings['load']}\n"
        "bars: req/s and ratio to the bare server",
        fontsize=10,
    )
    axes.legend(fontsize=9, loc="upper center", ncol=len(counts) + 1, bbox_to_anchor=(0.5, -0.16))
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
