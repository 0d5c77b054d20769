"""Benchmark: the fast path from the course's 3,483 photos to tens of thousands, on real photos.

Sizes above the course's are made from its photos: the 654 photos of the course's first 3
shards stay the validation set, unchanged, and the training photos are made from the other
2,829 by distinct random crops (a side of 60-100% of the photo's, anywhere in it) and
left-right flips, each (photo, crop, flip) drawn once, then written as shards by the package's
own writer (`convert.convert_labeled_dataset`, 224 px JPEG) into a work folder outside the
repository (default ~/.cache/flowers_tl/scale), once: a later run reuses them. No made photo
comes from a validation photo, so the accuracy is honest.

For each size, in a fresh process: the frozen MobileNetV2 runs once over every photo (the
feature pass), then the Flatten head trains for a few epochs on the cached activations, in
memory or on disk as `memory.place_for` decides (`--place` forces one, through
FLOWERS_TL_ACTIVATIONS). Reported: photos/s of making the shards, of the feature pass and of
the head's epochs, the process's peak resident memory (ru_maxrss), the disk the shards and
the cache take, where the cache was, and the final validation accuracy.

    python benchmarks/scale.py --sizes 3483 20000 --output benchmarks/results
"""

import argparse
import datetime
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time

COURSE_PHOTOS = 3483
VALIDATION_SHARDS = 3  # the course's split: its first 3 shards validate
PHOTOS_PER_SHARD = 218  # as in the course's shards
SMALLEST_CROP = 0.6  # of the photo's side
DEFAULT_WORK = os.path.join("~", ".cache", "flowers_tl", "scale")


def course_split():
    """(validation shards, training shards) of $FLOWERS_TL_DATA, as the course splits them."""
    import flowers_tl as ftl

    shards = ftl.list_shards()
    return shards[:VALIDATION_SHARDS], shards[VALIDATION_SHARDS:]


def made_folder(work: str, size: int) -> str:
    return os.path.join(os.path.expanduser(work), f"train-{size}")


def make_photos(size: int, work: str, seed: int = 1) -> dict:
    """Write the training shards of a `size`-photo set (validation included) once; making figures."""
    import numpy as np
    import tensorflow as tf

    from flowers_tl import records
    from flowers_tl.tool import convert
    from flowers_tl.pictures import decode_picture

    folder = made_folder(work, size)
    done_file = os.path.join(folder, "made.json")
    if os.path.exists(done_file):
        with open(done_file, encoding="utf-8") as handle:
            return json.load(handle)
    validation, training = course_split()
    start = time.perf_counter()
    sources = []
    for record in tf.data.TFRecordDataset(training).as_numpy_iterator():
        fields = records.decode(record, ("image", "class"))
        sources.append((np.asarray(decode_picture(fields["image"], "record")), int(fields["class"])))
    validation_photos = sum(1 for _ in tf.data.TFRecordDataset(validation))
    wanted = size - validation_photos
    crops = distinct_crops(wanted, [pixels.shape[:2] for pixels, _ in sources], seed)

    def photos():
        for index, (top, left, side, flip) in crops:
            pixels, label = sources[index]
            crop = pixels[top:top + side, left:left + side]
            yield {"image": crop[:, ::-1] if flip else crop, "label": label}

    dataset = tf.data.Dataset.from_generator(photos, output_signature={
        "image": tf.TensorSpec([None, None, 3], tf.uint8), "label": tf.TensorSpec([], tf.int64)})
    report = convert.convert_labeled_dataset(dataset, records.CLASSES, folder, image_size=224,
                                             shards=max(1, wanted // PHOTOS_PER_SHARD), seed=seed, source="scale")
    seconds = time.perf_counter() - start
    made = {"made_photos": report.images, "make_seconds": round(seconds, 1),
            "make_photos_per_s": round(report.images / seconds, 1),
            "make_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    with open(done_file, "w", encoding="utf-8") as handle:
        json.dump(made, handle)
    return made


def distinct_crops(count: int, sizes, seed: int):
    """`count` (photo index, (top, left, side, flip)) picks, photos in turn, no pick twice."""
    import numpy as np

    generator = np.random.default_rng(seed)
    seen, picks = set(), []
    while len(picks) < count:
        index = len(picks) % len(sizes)
        height, width = sizes[index]
        shortest = min(height, width)
        side = int(generator.integers(int(shortest * SMALLEST_CROP), shortest + 1))
        pick = (int(generator.integers(0, height - side + 1)), int(generator.integers(0, width - side + 1)),
                side, bool(generator.integers(0, 2)))
        if (index, pick) not in seen:
            seen.add((index, pick))
            picks.append((index, pick))
    return picks


def train_one(size: int, work: str, epochs: int, seed: int) -> dict:
    """The feature pass and the head's epochs on a `size`-photo set, in this process; its figures."""
    import keras

    import flowers_tl as ftl
    from flowers_tl.data import split_shards
    from flowers_tl.frozen import ACTIVATIONS

    validation, training = course_split()
    if size != COURSE_PHOTOS:
        training = sorted(glob.glob(os.path.join(made_folder(work, size), "*.tfrec")))
    split = split_shards(shards=validation + training, validation_shards=len(validation))
    keras.utils.set_random_seed(seed)
    model = ftl.build_model(224)
    ftl.compile_model(model, learning_rate=1e-3)
    result = ftl.train(model, split, epochs=epochs, batch_size=64, seed=seed, verbose=0)
    on_disk = ACTIVATIONS.folder_on_disk is not None
    cache_bytes = folder_bytes(ACTIVATIONS.folder_on_disk) if on_disk else 0
    epoch_seconds = result.wall_time_s - result.feature_time_s
    images = split.training_images + split.validation_images
    return {"photos": images, "training_photos": split.training_images,
            "validation_photos": split.validation_images, "epochs": epochs,
            "feature_seconds": round(result.feature_time_s, 1),
            "feature_photos_per_s": round(images / result.feature_time_s, 1),
            "epoch_seconds": round(epoch_seconds, 1),
            "head_photos_per_s": round(split.training_images * epochs / epoch_seconds, 1),
            "cache": "disk" if on_disk else "memory", "cache_mb": round(cache_bytes / 2**20, 1),
            "shards_mb": round(sum(os.path.getsize(shard) for shard in split.training_shards
                                   + split.validation_shards) / 2**20, 1),
            "final_val_accuracy": round(result.final_val_accuracy, 4)}


def folder_bytes(folder: str) -> int:
    """The disk blocks the files of `folder` take, in bytes."""
    return sum(os.stat(os.path.join(folder, name)).st_blocks * 512 for name in os.listdir(folder))


def run_in_child(step: str, size: int, args, place: str = "auto") -> dict:
    """Run one step ("make" or "train") in a fresh process; its row, with its peak memory."""
    command = [sys.executable, __file__, "--one", f"{step}:{size}", "--work", args.work,
               "--epochs", str(args.epochs)]
    environment = dict(os.environ, FLOWERS_TL_ACTIVATIONS=place)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{step} {size} failed:\n{done.stderr[-3000:]}")
    row = json.loads(lines[-1][len("RESULT "):])
    row["process_seconds"] = round(time.perf_counter() - start, 1)
    return row


def earlier_rows(path: str) -> list:
    """The rows of earlier runs in the results file: each size can be run alone (the largest
    take minutes each on 2 cores) and the file gathers every run; `run_started` tells which
    rows were measured together, the only ones whose ratios mean much on a shared machine."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["runs"]


def print_table(rows: list) -> None:
    print("| run started | photos | cache asked | made/s | feature pass photos/s | head photos/s (x epochs) "
          "| cache | cache MB | shards MB | peak RSS MB | val acc |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['run_started']} | {row['photos']} | {row['place_asked']} | {row.get('make_photos_per_s', '-')} "
              f"| {row['feature_photos_per_s']} "
              f"| {row['head_photos_per_s']} ({row['epochs']}) | {row['cache']} | {row['cache_mb']} "
              f"| {row['shards_mb']} | {row['peak_rss_mb']} | {row['final_val_accuracy']} |")


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
            f"{platform.python_implementation()} {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[COURSE_PHOTOS, 20000, 100000],
                        help="photos per set, validation included (3483: the course's own)")
    parser.add_argument("--places", nargs="+", default=["auto"], choices=["auto", "memory", "disk"],
                        help="where the activations go, each size run once per place (default auto)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--work", default=DEFAULT_WORK, help="where made shards go (default %(default)s)")
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument("--name", default="scale", help="the results file's name (default scale)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: STEP:SIZE in a child process
    args = parser.parse_args()
    if args.one:
        step, size = args.one.split(":")
        row = (make_photos(int(size), args.work) if step == "make" else
               train_one(int(size), args.work, args.epochs, seed=1))
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print("RESULT " + json.dumps(row), flush=True)
        return 0

    path = os.path.join(args.output, f"{args.name}.json")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # rows measured together
    rows = []
    for size in args.sizes:
        made = run_in_child("make", size, args) if size != COURSE_PHOTOS else {}
        for place in args.places:
            row = {"run_started": started, "place_asked": place,
                   **run_in_child("train", size, args, place)}
            row.update({key: value for key, value in made.items() if key.startswith("make")})
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
    rows = sorted(earlier_rows(path) + rows,
                  key=lambda row: (row["photos"], row["place_asked"], row["run_started"]))
    os.makedirs(args.output, exist_ok=True)
    report = {"machine": machine(), "image_size": 224, "head": "flatten", "batch_size": 64, "runs": rows}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
