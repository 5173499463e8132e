"""A benchmark run (the dict ``run.py`` writes as JSON) -> markdown tables and a bar chart.

Ratios are tinynn's time divided by a peer's, measured side by side in one run: below 1,
tinynn is faster. ``python -m benchmarks.report RUN.json`` prints the table of a saved run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAMES = {"tinynn": "tinynn", "keras": "Keras", "torch": "PyTorch"}
COLORS = {"tinynn": "C0", "keras": "C1", "torch": "C2"}
PEERS = ("keras", "torch")
RATIO_METRICS = {"median_epoch_s": "epoch", "predict_s": "predict"}


def measured(run: dict, framework: str, model: str) -> dict | None:
    """The successful result of ``framework`` on ``model``, or None."""
    for result in run["results"]:
        if (result["framework"], result["model"], result["status"]) == (framework, model, "ok"):
            return result
    return None


def ratios(run: dict) -> list[dict]:
    """tinynn time / peer time per model, peer and metric (epoch, predict), where both ran."""
    rows = []
    for model in run["settings"]["models"]:
        ours = measured(run, "tinynn", model)
        for peer in PEERS:
            theirs = measured(run, peer, model)
            if ours and theirs:
                rows += [{"model": model, "peer": peer, "metric": label,
                          "ratio": ours[key] / theirs[key]}
                         for key, label in RATIO_METRICS.items()]
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _ratio_table(run: dict) -> list[str]:
    peers = [p for p in PEERS if any(r["peer"] == p for r in run["ratios"])]
    if not peers:
        return ["No peer framework was measured: tinynn alone, no ratios."]
    found = {(r["model"], r["peer"], r["metric"]): r["ratio"] for r in run["ratios"]}
    columns = [(metric, peer) for metric in RATIO_METRICS.values() for peer in peers]
    rows = [[run["settings"]["models"][model]["title"],
             *(f"{found[model, peer, metric]:.2f}" if (model, peer, metric) in found else "-"
               for metric, peer in columns)]
            for model in run["settings"]["models"]]
    return _table(["model", *(f"{metric}: tinynn / {NAMES[peer]}" for metric, peer in columns)],
                  rows)


def _result_rows(run: dict) -> list[list[str]]:
    peak = run["matmul"][0]["gflops"] if run["matmul"] else None
    rows = []
    for result in run["results"]:
        spec = run["settings"]["models"][result["model"]]
        name = [spec["title"], NAMES[result["framework"]]]
        if result["status"] != "ok":
            rows.append(name + [result["status"]] + [""] * 7)
            continue
        full = spec["full_accuracy"].get(result["framework"])
        share = f" ({result['gflops'] / peak:.0%})" if peak else ""
        rows.append(name + [
            f"{result['median_epoch_s']:.2f}", f"{result['epoch_seconds'][0]:.2f}",
            f"{result['evaluate_s']:.2f}", f"{result['predict_s']:.2f}",
            f"{result['peak_rss_mb']:.0f}", f"{result['test_accuracy']:.4f}",
            f"{full:.4f} ({spec['full_epochs']} ep.)" if full else "-",
            f"{result['gflops']:.1f}{share}"])
    return rows


def _kernel_rows(run: dict) -> list[list[str]]:
    return [[k["kernel"], k["shape"], f"{k['numpy_ms']:.3f}", f"{k['numba_ms']:.3f}",
             f"{k['numpy_ms'] / k['numba_ms']:.1f}x", f"{k['compile_s']:.2f}",
             k.get("chosen", "numba")] for k in run["kernels"]]


def _profile_lines(profile: dict) -> list[str]:
    """The per-layer profile of one CNN training step and its GEMM floor, as markdown."""
    step = profile["profile"]
    rows = [[layer["layer"], layer["algorithm"] or "", f"{layer['forward_ms']:.2f}",
             f"{layer['backward_ms']:.2f}"] for layer in step["layers"]]
    rows += [[name, "", "", f"{step[key]:.2f}"] for name, key in (
        ("loss", "loss_ms"), ("finite check", "finite_check_ms"), ("optimizer", "optimizer_ms"))]
    floor = profile["gemm_floor"]
    return [f"### Profile of one CNN training step (batch {step['batch']}, median of "
            f"{step['steps']} steps, ms)", "",
            *_table(["layer", "algorithm", "forward", "backward"], rows), "",
            f"Whole step: {step['step_ms']:.2f} ms, {step['page_faults_per_step']:.0f} page "
            f"faults. GEMM floor (the step's matrix products alone at im2col's shapes, NumPy's "
            f"BLAS): {floor['total_ms']:.2f} ms for {floor['gflop']:.2f} GFLOP.", ""]


def markdown(run: dict) -> str:
    """The run as markdown: settings, ratios, every measurement, kernels, versions."""
    settings, env = run["settings"], run["environment"]
    threads = ", ".join(f"{k}={v}" for k, v in settings["thread_env"].items())
    matmul = ", ".join(f"{m['gflops']:.0f} GFLOP/s at {m['shape']}" for m in run["matmul"])
    epochs = settings["epochs"]
    steady = {1: "only epoch, warm-up included", 2: "second epoch"}.get(
        epochs, f"median of epochs 2-{epochs}")
    lines = [
        f"## tinynn vs Keras vs PyTorch: {settings['kind']} run, {env['date'][:16]}", "",
        f"{env['cpu']}, {env['cores']} cores. Each framework and model in its own process, "
        f"{settings['threads']} threads ({threads}; TensorFlow intra/inter-op and torch threads "
        f"= {settings['threads']}); Keras on {settings['keras_backend']}. "
        f"{settings['train_images']:,} training images, batch {settings['batch_size']}, "
        f"{epochs} epochs; s/epoch is training only, the {steady}. Evaluate and predict: "
        f"{settings['test_images']:,} test images at batch {settings['inference_batch_size']}. "
        f"NumPy float32 matmul: {matmul or 'not measured'}.", "",
        "### Time ratios, tinynn / peer (below 1: tinynn is faster)", "", *_ratio_table(run), "",
        "### Measurements", "",
        *_table(["model", "framework", "s/epoch", "first epoch s", "evaluate s", "predict s",
                 "peak RSS MB", "test acc.", "acc. at full length (examples)",
                 "GFLOP/s (of matmul peak)"], _result_rows(run)), ""]
    if run.get("profile"):
        lines += _profile_lines(run["profile"])
    if run["kernels"]:
        lines += ["### Kernels: numba vs NumPy reference (ms per call, median)", "",
                  *_table(["kernel", "shape", "NumPy ms", "numba ms", "speed-up",
                           "numba compile s", "tinynn runs"], _kernel_rows(run)), ""]
    kernels = ", ".join(f"{pool['internal_api']} {pool['version']}, {pool['architecture']} "
                        f"kernel" for pool in run.get("blas_pools", []))
    dropped = settings.get("dropped_variables")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
                 + f"; BLAS: {env['blas']}" + (f" ({kernels})" if kernels else "") + "."
                 + (f" Workers ran without {' and '.join(dropped)} (see run.py's"
                    f" BLAS_OVERRIDES)." if dropped else ""))
    missing = dict.fromkeys((r["framework"], r["reason"]) for r in run["results"]
                            if r["status"] != "ok")
    lines += [f"\nNot measured: {NAMES[framework]}, {reason}." for framework, reason in missing]
    return "\n".join(lines) + "\n"


def plot(run: dict, path: Path) -> Path:
    """A PNG: seconds per epoch of every framework (left) and the time ratios (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    models = list(run["settings"]["models"])
    titles = [run["settings"]["models"][m]["title"] for m in models]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    frameworks = [f for f in NAMES if any(measured(run, f, m) for m in models)]
    width = 0.8 / max(len(frameworks), 1)
    for i, framework in enumerate(frameworks):
        seconds = [(measured(run, framework, m) or {}).get("median_epoch_s", 0) for m in models]
        left.bar([x + i * width for x in range(len(models))], seconds, width,
                 label=NAMES[framework], color=COLORS[framework])
    left.set(yscale="log", ylabel="seconds per training epoch (log)", title="Epoch time")
    left.set_xticks([x + width * (len(frameworks) - 1) / 2 for x in range(len(models))], titles)
    left.legend()
    series = [(metric, peer) for metric in RATIO_METRICS.values() for peer in PEERS
              if any((r["metric"], r["peer"]) == (metric, peer) for r in run["ratios"])]
    width = 0.8 / max(len(series), 1)
    for i, (metric, peer) in enumerate(series):
        found = {r["model"]: r["ratio"] for r in run["ratios"]
                 if (r["metric"], r["peer"]) == (metric, peer)}
        bars = right.bar([x + i * width for x in range(len(models))],
                         [found.get(m, 0) for m in models], width, color=COLORS[peer],
                         hatch="//" if metric == "predict" else None, edgecolor="white",
                         label=f"{metric}: tinynn / {NAMES[peer]}")
        right.bar_label(bars, fmt="%.2f", fontsize=7)
    right.axhline(1.0, color="black", linewidth=0.8)
    right.set(yscale="log", ylabel="time ratio (log; below 1: tinynn faster)",
              title="tinynn / peer" if series else "tinynn / peer: no peer measured")
    right.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(models))], titles)
    if series:
        right.set_ylim(top=max(r["ratio"] for r in run["ratios"]) * 4)  # room for the legend
        right.legend(fontsize=8, ncols=2, loc="upper left")
    for axes in (left, right):  # log axes labelled 0.1, 0.2, 0.5, 1, 2, 5, ...
        axes.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(ticker.NullFormatter())
    fig.suptitle(f"{run['environment']['cpu']}, {run['settings']['threads']} threads, "
                 f"{run['environment']['date'][:10]} ({run['settings']['kind']} run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(run: dict, directory: Path, stem: str) -> list[Path]:
    """``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.{ext}" for ext in ("json", "md", "png")]
    paths[0].write_text(json.dumps(run, indent=1) + "\n")
    paths[1].write_text(markdown(run))
    plot(run, paths[2])
    return paths


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())), end="")
