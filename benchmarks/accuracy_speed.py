"""Benchmark: the original course recipe, frozen heads and fine-tuning, side by side, on real data.

Every run trains on the shards of $FLOWERS_TL_DATA (validation = the first 3 shards) with
the weights of $FLOWERS_TL_WEIGHTS, in a process of its own, and is timed from the
process's start to its exit (Python and TensorFlow start-up, model build, every pass over
the photos, every stage), so the seconds compare whole jobs; the test-time-flip scoring some
rows add after training is timed apart (`scoring_seconds`) and left out of `x original`.
Configurations:

  original     the original course: pixels / 255, frozen MobileNetV2, Flatten, softmax,
               Adam 1e-3, batch 64, 10 epochs, the backbone recomputed every epoch (192 px);
  default      `flowers-tl train` with its defaults (Flatten head, backbone computed once);
  frozen-224   the best frozen model: 224 px, square-rooted features, Flatten, dropout 0.7,
               feature flips, Adam 1e-3, 10 epochs; scored with and without test-time flips;
  ftB-S        fine-tuning: GAP head (dropout 0.2, Adam 1e-3, 5 epochs), then blocks B+1..16
               and Conv_1 at Adam 1e-4 (cosine), 8 epochs, batch 32, flips of the cached
               activations, the backbone cut after block B (15, 12 or 9) at S px (192 or 224);
               scored with and without test-time flips.

`--set main` (the default, about 40 minutes on 2 shared cores, as measured) runs original (1 seed: 6 minutes
each), default, frozen-224 and ft12-224 (3 seeds); `--set grid` runs the other cuts and
sizes (1 seed each, about 18 minutes shared); `--quick` is a smoke run (1 seed, a few epochs,
about 10 minutes shared). Prints a table, writes JSON and an accuracy-versus-seconds chart.

    python benchmarks/accuracy_speed.py --output benchmarks/results
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time


@dataclasses.dataclass(frozen=True)
class Config:
    """One way to train, as the table names it."""

    name: str
    kind: str  # original, default, frozen or finetune
    image_size: int = 192
    cut_after_block: int = 0  # fine-tuning: the last frozen block

    @property
    def label(self) -> str:
        return {"original": "original recipe (/255, Flatten, 10 epochs, backbone every epoch)",
                "default": "`flowers-tl train` defaults (Flatten, backbone once)",
                "frozen": "frozen: sqrt features, Flatten, dropout 0.7, flips",
                "finetune": f"fine-tuned, cut after block {self.cut_after_block}"}[self.kind] \
            + f", {self.image_size} px"


CONFIGS = {config.name: config for config in [
    Config("original", "original"),
    Config("default", "default"),
    Config("frozen-224", "frozen", 224),
    *[Config(f"ft{block}-{size}", "finetune", size, block) for block in (15, 12, 9) for size in (192, 224)],
]}
SETS = {"main": ["original", "default", "frozen-224", "ft12-224"],
        "grid": ["ft15-192", "ft15-224", "ft12-192", "ft9-192", "ft9-224"]}
HEAD_EPOCHS, FINE_TUNE_EPOCHS, EPOCHS = 5, 8, 10


def run_one(config: Config, seed: int, quick: bool) -> dict:
    """Train one configuration in this process; its accuracy and stage timings."""
    import keras

    import flowers_tl as ftl

    epochs = 2 if quick else EPOCHS
    if config.kind == "default":
        return run_default_cli(seed, epochs)
    keras.utils.set_random_seed(seed)
    split = ftl.split_shards()
    row = {}
    if config.kind == "original":
        model = original_recipe_model(config.image_size)
        result = ftl.train(model, split, epochs=epochs, batch_size=64, seed=seed, fast=False,
                           cosine_decay=False, verbose=0)
    elif config.kind == "frozen":
        model = ftl.build_model(config.image_size, dropout=0.7, square_root=True)
        ftl.compile_model(model, learning_rate=1e-3)
        result = ftl.train(model, split, epochs=epochs, batch_size=64, seed=seed, cosine_decay=True, verbose=0)
        row.update(score_with_flips(model, split))
    else:
        model = ftl.build_model(config.image_size, head="gap", dropout=0.2)
        ftl.compile_model(model, learning_rate=1e-3)
        head = ftl.train(model, split, epochs=2 if quick else HEAD_EPOCHS, batch_size=32, seed=seed,
                         cosine_decay=True, verbose=0)
        result = ftl.fine_tune(model, split, from_block=config.cut_after_block + 1,
                               epochs=2 if quick else FINE_TUNE_EPOCHS, seed=seed, verbose=0)
        row.update(score_with_flips(model, split))
        row.update(head_val_accuracy=head.final_val_accuracy, frozen_until=result.frozen_until,
                   head_seconds=round(head.wall_time_s, 1), fine_tune_seconds=round(result.wall_time_s, 1),
                   feature_seconds=round(head.feature_time_s + result.feature_time_s, 1))
        result.history = {key: head.history[key] + result.history[key] for key in result.history}
    row.update(final_val_accuracy=result.final_val_accuracy, best_val_accuracy=result.best_val_accuracy,
               epochs=len(result.history["val_accuracy"]), train_images=split.training_images,
               val_images=split.validation_images)
    row.setdefault("feature_seconds", round(result.feature_time_s, 1))
    return row


def score_with_flips(model, split) -> dict:
    """Accuracy with test-time flips, and the seconds this scoring adds to the process.

    The scoring is the benchmark's, not part of training: `process_seconds` minus
    `scoring_seconds` is what the training job itself took.
    """
    import flowers_tl as ftl

    start = time.perf_counter()
    accuracy = ftl.evaluate(model, split.validation_shards, flip_test=True)["accuracy"]
    return {"flip_test_accuracy": accuracy, "scoring_seconds": round(time.perf_counter() - start, 1)}


def run_default_cli(seed: int, epochs: int) -> dict:
    """`flowers-tl train` with its defaults, as a user runs it (only the seed and output are given)."""
    from flowers_tl.tool import cli

    with tempfile.TemporaryDirectory() as output:
        status = cli.main(["train", "--seed", str(seed), "--epochs", str(epochs), "--output", output])
        if status:
            raise SystemExit(f"flowers-tl train failed with status {status}")
        with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
            metrics = json.load(handle)
    return {key: metrics[key] for key in ("final_val_accuracy", "best_val_accuracy")} | {
        "epochs": metrics["epochs"], "feature_seconds": metrics["feature_time_s"],
        "train_images": metrics["training_images"], "val_images": metrics["validation_images"]}


def original_recipe_model(image_size: int):
    """The original course: pixels / 255 (a known flaw), frozen backbone, Flatten, softmax, adam 1e-3."""
    import keras

    import flowers_tl as ftl

    model = keras.Sequential([keras.Input((image_size, image_size, 3)), keras.layers.Rescaling(1 / 255),
                              ftl.load_backbone(image_size), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run_in_child(config: Config, seed: int, quick: bool) -> dict:
    """Run one configuration in a fresh process; its row, with the process's own wall time and memory."""
    command = [sys.executable, __file__, "--one", f"{config.name}:{seed}", *(["--quick"] if quick else [])]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{config.name} (seed {seed}) failed:\n{done.stderr[-3000:]}")
    return {"config": config.name, "seed": seed, "process_seconds": round(seconds, 1),
            **json.loads(lines[-1][len("RESULT "):])}


def summarize(rows: list) -> dict:
    """Per configuration: mean and spread of the final accuracy, median process seconds."""
    table = {}
    for name in dict.fromkeys(row["config"] for row in rows):
        runs = [row for row in rows if row["config"] == name]
        accuracy = [row["final_val_accuracy"] for row in runs]
        table[name] = {
            "label": CONFIGS[name].label, "seeds": len(runs),
            "final_val_accuracy_mean": round(statistics.mean(accuracy), 4),
            "final_val_accuracy_min": round(min(accuracy), 4),
            "final_val_accuracy_max": round(max(accuracy), 4),
            "process_seconds_median": round(statistics.median(row["process_seconds"] for row in runs), 1),
            "training_process_seconds_median": round(statistics.median(
                row["process_seconds"] - row.get("scoring_seconds", 0.0) for row in runs), 1),
            "feature_seconds_median": round(statistics.median(row["feature_seconds"] for row in runs), 1),
            "peak_rss_mb_max": max(row["peak_rss_mb"] for row in runs),
        }
        if "flip_test_accuracy" in runs[0]:
            table[name]["flip_test_accuracy_mean"] = round(
                statistics.mean(row["flip_test_accuracy"] for row in runs), 4)
        if "head_val_accuracy" in runs[0]:
            table[name]["head_val_accuracy_mean"] = round(
                statistics.mean(row["head_val_accuracy"] for row in runs), 4)
    if "original" in table:
        reference = table["original"]["process_seconds_median"]
        for row in table.values():
            row["time_vs_original"] = round(row["training_process_seconds_median"] / reference, 3)
    return table


def chart(rows: list, table: dict, path: str) -> None:
    """Accuracy against process seconds: one dot per run, one label per configuration."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    for name, summary in table.items():
        runs = [row for row in rows if row["config"] == name]
        dots = axes.scatter([row["process_seconds"] for row in runs],
                            [row["final_val_accuracy"] for row in runs], label=summary["label"])
        axes.annotate(name, (summary["process_seconds_median"], summary["final_val_accuracy_mean"]),
                      textcoords="offset points", xytext=(6, 4), color=dots.get_facecolor()[0])
    axes.set_xlabel("whole process, seconds (2 CPU cores)")
    axes.set_ylabel("final validation accuracy (654 photos)")
    axes.set_title("Flowers, MobileNetV2: accuracy against time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center right")
    figure.savefig(path)


def print_table(table: dict) -> None:
    print("| config | seeds | final val acc, mean (min..max) | with test flips | process s (median) "
          "| without scoring | x original | one-pass s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name}: {row['label']} | {row['seeds']} | {row['final_val_accuracy_mean']:.4f} "
              f"({row['final_val_accuracy_min']:.3f}..{row['final_val_accuracy_max']:.3f}) "
              f"| {row.get('flip_test_accuracy_mean', '')} | {row['process_seconds_median']} "
              f"| {row['training_process_seconds_median']} "
              f"| {row.get('time_vs_original', '')} | {row['feature_seconds_median']} | {row['peak_rss_mb_max']} |")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_implementation()} {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), default="main", help="which configurations (default main)")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), help="these configurations instead")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 1 2 3 (main), 1 (grid, original)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 seed, 2 epochs per stage")
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: CONFIG:SEED in a child process
    args = parser.parse_args()
    if args.one:
        name, seed = args.one.split(":")
        row = run_one(CONFIGS[name], int(seed), args.quick)
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print("RESULT " + json.dumps(row), flush=True)
        return 0

    names = args.configs or SETS[args.set]
    rows = []
    for name in names:
        seeds = args.seeds or ([1, 2, 3] if args.set == "main" and name != "original" else [1])
        for seed in seeds[:1] if args.quick else seeds:
            rows.append(run_in_child(CONFIGS[name], seed, args.quick))
            print(json.dumps(rows[-1]), flush=True)
    table = summarize(rows)
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, f"accuracy_speed_{'quick' if args.quick else args.set}")
    report = {"date": datetime.date.today().isoformat(), "machine": machine(), "quick": args.quick,
              "summary": table, "runs": rows}
    with open(stem + ".json", "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    chart(rows, table, stem + ".png")
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
