"""Checking a folder of your own photos before training on it.

`check_photos(folder, image_size)` reads every file of `folder/<class name>/` once and
returns a `PhotoCheck`: the photos of each class, and what would spoil the training:
* a class with too few photos (under `MIN_PHOTOS`): the model cannot learn it, nor can it be measured;
* a strong imbalance (the largest class `IMBALANCE` times the smallest or more): the model
  learns to answer the large class;
* files that cannot be used (not a picture, cut short, a HEIC...), each named with why;
* the same photo twice (the same file contents, by SHA-256): in two classes it has two
  labels, and in one class it may land in both the training and the validation photos;
* tiny pictures (the shorter side under a quarter of the model's input), blown up into blur.

The classes and files are those `convert.convert_folder` turns into shards (same listing,
same decoder), so what the check reports is what training would meet. In a notebook a
`PhotoCheck` shows as a table of counts and a list of problems; elsewhere it prints as text.
"""

import collections
import dataclasses
import hashlib
import html
import os
from typing import Dict, List, Tuple

from .errors import DataError
from .messages import N_, N_plural, class_name, say, say_n
from .pictures import SMALL_PICTURE_FRACTION, decode_picture, read_picture_bytes
from .records import DEFAULT_IMAGE_SIZE
from .rules import image_size_pair

MIN_PHOTOS = 10  # fewer, and a class can be neither learned nor measured
IMBALANCE = 3  # the largest class this many times the smallest: the model leans to the large one
SHOWN_PROBLEMS = 20  # a folder full of problems: the first ones, then how many more

FEW_PHOTOS = N_plural("Class '{name}' has only {count} photo: give it at least {least} (50 or more is better).",
                      "Class '{name}' has only {count} photos: give it at least {least} (50 or more is better).")
IMBALANCED = N_("Classes out of balance: '{large}' has {large_count} photos, '{small}' only {small_count}. The model "
                "will lean towards '{large}': add photos of '{small}', or leave some of '{large}' out.")
CANNOT_USE = N_("'{path}' cannot be used: {reason}. Fix it or remove it.")
IN_TWO_CLASSES = N_("The same photo is in two classes: '{first}' and '{second}'. Keep it only in its right class.")
TWICE_IN_A_CLASS = N_("The same photo twice in '{name}': '{first}' and '{second}'. Remove one, or it may be both "
                      "trained on and used to measure the model.")
TINY = N_("'{path}' is only {width}x{height} pixels, far smaller than the model's {size}x{size}: it will be "
          "blurry. Use a larger photo.")
MORE_PROBLEMS = N_plural("... and {count} more problem.", "... and {count} more problems.")
NO_PROBLEM = N_("No problem found: {photos} photos in {classes} classes.")
PROBLEMS_FOUND = N_plural("{count} problem to look at:", "{count} problems to look at:")
CLASS_COLUMN = N_("class")
PHOTOS_COLUMN = N_("photos")
TOTAL_ROW = N_("all classes")


@dataclasses.dataclass
class PhotoCheck:
    """What `check_photos` found in a photo folder.

    `photos`: {class name: the paths of its usable photos}, classes in the order training numbers
    them; `problems`: one sentence each (in the chosen language), the most important first.
    """

    folder: str
    photos: Dict[str, List[str]]
    problems: List[str]

    @property
    def classes(self) -> List[str]:
        """The class names, in the order the model numbers them."""
        return list(self.photos)

    @property
    def counts(self) -> Dict[str, int]:
        """{class name: number of usable photos}."""
        return {name: len(paths) for name, paths in self.photos.items()}

    @property
    def ok(self) -> bool:
        """True when nothing needs a look."""
        return not self.problems

    def summary(self) -> str:
        """One line: no problem, or how many problems follow."""
        if self.ok:
            return say(NO_PROBLEM, photos=sum(self.counts.values()), classes=len(self.photos))
        return say_n(*PROBLEMS_FOUND, len(self.problems), count=len(self.problems))

    def shown_problems(self) -> List[str]:
        """The first SHOWN_PROBLEMS problems, then how many more there are."""
        more = len(self.problems) - SHOWN_PROBLEMS
        return self.problems[:SHOWN_PROBLEMS] + ([say_n(*MORE_PROBLEMS, more, count=more)] if more > 0 else [])

    def __str__(self) -> str:
        width = max(len(say(TOTAL_ROW)), *(len(class_name(name)) for name in self.photos))
        rows = [f"{say(CLASS_COLUMN):<{width}}  {say(PHOTOS_COLUMN)}"]
        rows += [f"{class_name(name):<{width}}  {count:>6}" for name, count in self.counts.items()]
        rows.append(f"{say(TOTAL_ROW):<{width}}  {sum(self.counts.values()):>6}")
        return "\n".join(rows + ["", self.summary(), *(f"- {problem}" for problem in self.shown_problems())])

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's plain text: the table, not the fields
        printer.text(str(self))

    def _repr_html_(self) -> str:
        cell = "<td style='text-align:{align}'>{text}</td>"
        rows = "".join(f"<tr>{cell.format(align='left', text=html.escape(class_name(name)))}"
                       f"{cell.format(align='right', text=count)}</tr>" for name, count in self.counts.items())
        total = (f"<tr><th style='text-align:left'>{html.escape(say(TOTAL_ROW))}</th>"
                 f"<th style='text-align:right'>{sum(self.counts.values())}</th></tr>")
        table = (f"<table><tr><th style='text-align:left'>{html.escape(say(CLASS_COLUMN))}</th>"
                 f"<th style='text-align:right'>{html.escape(say(PHOTOS_COLUMN))}</th></tr>{rows}{total}</table>")
        items = "".join(f"<li>{html.escape(problem)}</li>" for problem in self.shown_problems())
        return f"{table}<p>{html.escape(self.summary())}</p>" + (f"<ul>{items}</ul>" if items else "")


def check_photos(folder: str, image_size=DEFAULT_IMAGE_SIZE) -> PhotoCheck:
    """Read every photo of `folder/<class name>/` once and say what would spoil training on them.

    `image_size`: the model's input (192 or [192, 192]), to tell tiny pictures. DataError, as
    `convert_folder` raises it, for a folder that is not one sub-folder of photos per class.
    """
    from .tool.convert import list_class_photos  # the converter's own listing: the photos it will convert

    side = min(image_size_pair(image_size))
    classes, files, left_out = list_class_photos(folder)
    photos: Dict[str, List[str]] = {name: [] for name in classes}
    unusable, tiny = list(left_out), []
    by_contents: Dict[str, List[Tuple[str, str]]] = collections.defaultdict(list)
    for path, index in sorted(files):
        try:
            raw = read_picture_bytes(path)
            width, height = decode_picture(raw, path).size
        except DataError as error:
            unusable.append((path, getattr(error, "reason", str(error))))
            continue
        photos[classes[index]].append(path)
        by_contents[hashlib.sha256(raw).hexdigest()].append((classes[index], path))
        if min(width, height) * SMALL_PICTURE_FRACTION < side:
            tiny.append(say(TINY, path=path, width=width, height=height, size=side))
    folders = _folder_names(folder)
    photos = {name: paths for name, paths in photos.items() if paths or name in folders}
    problems = (_count_problems(photos) + [say(CANNOT_USE, path=path, reason=reason) for path, reason in unusable]
                + _twin_problems(by_contents.values()) + tiny)
    return PhotoCheck(folder=folder, photos=photos, problems=problems)


def _folder_names(folder: str) -> set:
    """The class names that are sub-folders of `folder` (the course's five flowers keep their numbering
    even when some are missing: those missing are not the learner's classes)."""
    return {entry for entry in os.listdir(folder) if os.path.isdir(os.path.join(folder, entry))}


def _count_problems(photos: Dict[str, List[str]]) -> List[str]:
    """Classes with fewer than MIN_PHOTOS photos, and the imbalance between the largest and the smallest."""
    counts = {name: len(paths) for name, paths in photos.items()}
    problems = [say_n(*FEW_PHOTOS, count, name=class_name(name), count=count, least=MIN_PHOTOS)
                for name, count in counts.items() if count < MIN_PHOTOS]
    large, small = max(counts, key=counts.get), min(counts, key=counts.get)
    if counts[large] >= IMBALANCE * max(counts[small], 1):
        problems.append(say(IMBALANCED, large=class_name(large), large_count=counts[large],
                            small=class_name(small), small_count=counts[small]))
    return problems


def _twin_problems(groups) -> List[str]:
    """One sentence per photo found under a second name: in another class, or in the same one."""
    problems = []
    for group in groups:
        (first_class, first), *others = group
        for other_class, other in others:
            problems.append(say(IN_TWO_CLASSES, first=first, second=other) if other_class != first_class else
                            say(TWICE_IN_A_CLASS, name=class_name(first_class), first=first, second=other))
    return problems
