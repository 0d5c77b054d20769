"""Benchmark: the original course recipe vs flowers_tl's training, side by side, on real data.

Runs, on the shards of $FLOWERS_TL_DATA (validation = first 3 shards, 192 px, the
weights of $FLOWERS_TL_WEIGHTS), for each seed:
  (a) original  : pixels / 255, frozen MobileNetV2, Flatten, Dense softmax, adam,
                  batch 64, 10 epochs, backbone recomputed every epoch (plain fit on images);
  (b) default   : flowers_tl's default (Flatten head, features computed once);
  (c) gap       : the GlobalAveragePooling head, same fast path (rate 3e-3, dropout 0.2, 2x epochs);
  (d) finetune  : (b), then the top of the backbone unfrozen and trained at a low rate.
Each configuration runs in its own subprocess so its peak resident memory is its own.
Prints a table, writes JSON and a PNG chart. `--quick` is a smoke run (1 seed, 2 epochs).

    python benchmarks/accuracy_speed.py --output benchmarks/results
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

CONFIGS = ("original", "default", "gap", "finetune")


def run_one(config: str, seed: int, epochs: int, finetune_epochs: int, image_size: int) -> dict:
    """Train one configuration in this process and return its numbers."""
    import keras

    import flowers_tl as ftl
    from flowers_tl import data as flowers_data

    keras.utils.set_random_seed(seed)
    accelerator = ftl.detect_accelerator(verbose=False)
    split = ftl.split_shards()
    if config == "original":
        model = original_recipe_model(image_size)
        result = ftl.train(model, split, epochs=epochs, batch_size=64, seed=seed, fast=False,
                           cosine_decay=False, verbose=0)
    elif config == "gap":  # 1,280 features per image: a higher rate, longer, lighter dropout
        model = ftl.build_model(image_size, head="gap", dropout=0.2, accelerator=accelerator)
        ftl.compile_model(model, learning_rate=3e-3)
        result = ftl.train(model, split, epochs=2 * epochs, batch_size=64, seed=seed,
                           accelerator=accelerator, verbose=0)
    else:
        model = ftl.build_model(image_size, accelerator=accelerator)
        ftl.compile_model(model)
        result = ftl.train(model, split, epochs=epochs, batch_size=64, seed=seed,
                           accelerator=accelerator, verbose=0)
    history, seconds = result.history, result.wall_time_s
    if config == "finetune":
        tuned = fine_tune(model, split, finetune_epochs, seed, accelerator)
        history = {key: history[key] + tuned.history[key] for key in ("val_accuracy", "accuracy")}
        seconds += tuned.wall_time_s
    trained_images = len(history["val_accuracy"]) * split.training_images
    decode = decode_images_per_second(split.training_shards, image_size) if config == "default" else None
    return {
        "config": config, "seed": seed,
        "final_val_accuracy": float(history["val_accuracy"][-1]),
        "best_val_accuracy": float(max(history["val_accuracy"])),
        "train_seconds": round(seconds, 2),
        "feature_seconds": round(result.feature_time_s, 2),
        "images_per_second": round(trained_images / seconds, 1),
        "decode_images_per_second": decode,
        "epochs": len(history["val_accuracy"]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fast_path": result.fast_path,
        "val_images": split.validation_images, "train_images": split.training_images,
        "image_size": image_size, "flowers_data": flowers_data.data_pattern(),
    }


def original_recipe_model(image_size: int):
    """The original course: pixels / 255 (a known flaw), frozen backbone, Flatten, softmax, adam 1e-3."""
    import keras

    import flowers_tl as ftl

    backbone = ftl.load_backbone(image_size)
    model = keras.Sequential([keras.Input((image_size, image_size, 3)), keras.layers.Rescaling(1 / 255),
                              backbone, keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fine_tune(model, split, epochs: int, seed: int, accelerator):
    """Unfreeze the top of the backbone (all but its first 60 layers) and train on images at 3e-5."""
    import keras

    import flowers_tl as ftl

    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):  # BatchNorm stays frozen (inference mode)
        if index < 60 or isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    with accelerator.scope():
        model.compile(optimizer=keras.optimizers.Adam(3e-5), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    return ftl.train(model, split, epochs=epochs, batch_size=32, seed=seed, accelerator=accelerator,
                     fast=False, verbose=0)


def decode_images_per_second(shards, image_size: int) -> float:
    """The input pipeline alone: read + decode + resize, images per second."""
    from flowers_tl import data as flowers_data

    dataset = flowers_data.load_dataset(shards, image_size).batch(64)
    start, count = time.perf_counter(), 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return round(count / (time.perf_counter() - start), 1)


def summarize(rows: list) -> dict:
    """Mean and spread (min..max) per configuration."""
    import statistics

    table = {}
    for config in CONFIGS:
        runs = [r for r in rows if r["config"] == config]
        if not runs:
            continue
        column = lambda key: [r[key] for r in runs]  # noqa: E731
        table[config] = {
            "seeds": len(runs),
            "final_val_accuracy_mean": round(statistics.mean(column("final_val_accuracy")), 4),
            "final_val_accuracy_min": round(min(column("final_val_accuracy")), 4),
            "final_val_accuracy_max": round(max(column("final_val_accuracy")), 4),
            "best_val_accuracy_mean": round(statistics.mean(column("best_val_accuracy")), 4),
            "train_seconds_median": round(statistics.median(column("train_seconds")), 1),
            "images_per_second_median": round(statistics.median(column("images_per_second")), 1),
            "peak_rss_mb_max": max(column("peak_rss_mb")),
        }
    if "original" in table and "default" in table:
        table["default"]["time_vs_original"] = round(
            table["default"]["train_seconds_median"] / table["original"]["train_seconds_median"], 3)
    return table


def chart(table: dict, path: str) -> None:
    """Bar chart: mean final validation accuracy (with spread) and median training time."""
    from matplotlib.figure import Figure

    names = list(table)
    figure = Figure(figsize=(10, 4), layout="constrained")
    accuracy, seconds = figure.subplots(1, 2)
    means = [table[n]["final_val_accuracy_mean"] for n in names]
    low = [m - table[n]["final_val_accuracy_min"] for m, n in zip(means, names)]
    high = [table[n]["final_val_accuracy_max"] - m for m, n in zip(means, names)]
    accuracy.bar(names, means, yerr=[low, high], capsize=4, color="tab:green")
    accuracy.set_ylim(0.7, 1.0)
    accuracy.set_title("final validation accuracy (mean, min..max)")
    seconds.bar(names, [table[n]["train_seconds_median"] for n in names], color="tab:blue")
    seconds.set_title("training wall time, s (median)")
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs (+1 fine-tuning): a smoke run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=192)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: CONFIG:SEED in a child process
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.finetune_epochs = args.seeds[:1], 2, 1
    if args.one:
        config, seed = args.one.split(":")
        row = run_one(config, int(seed), args.epochs, args.finetune_epochs, args.image_size)
        print("RESULT " + json.dumps(row))
        return 0

    rows = []
    for seed in args.seeds:
        for config in args.configs:
            command = [sys.executable, __file__, "--one", f"{config}:{seed}", "--epochs", str(args.epochs),
                       "--finetune-epochs", str(args.finetune_epochs), "--image-size", str(args.image_size)]
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
            if done.returncode or not lines:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            rows.append(json.loads(lines[-1][len("RESULT "):]))
            print(json.dumps(rows[-1]), flush=True)
    table = summarize(rows)
    os.makedirs(args.output, exist_ok=True)
    report = {"date": datetime.date.today().isoformat(), "machine": machine(), "quick": args.quick,
              "epochs": args.epochs, "finetune_epochs": args.finetune_epochs, "summary": table, "runs": rows}
    with open(os.path.join(args.output, "accuracy_speed.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    chart(table, os.path.join(args.output, "accuracy_speed.png"))
    print_table(table)
    return 0


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_implementation()} {platform.python_version()}"


def print_table(table: dict) -> None:
    print("| config | seeds | final val acc (mean, min..max) | best val acc | train s (median) | img/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['seeds']} | {row['final_val_accuracy_mean']:.4f} "
              f"({row['final_val_accuracy_min']:.3f}..{row['final_val_accuracy_max']:.3f}) "
              f"| {row['best_val_accuracy_mean']:.4f} | {row['train_seconds_median']} "
              f"| {row['images_per_second_median']} | {row['peak_rss_mb_max']} |")
    if "time_vs_original" in table.get("default", {}):
        print(f"default / original training time: {table['default']['time_vs_original']}")


if __name__ == "__main__":
    sys.exit(main())
