"""The last chapter's helpers on real photos: the photo checks, bringing a folder, finding a photo's file again.

Every folder here is made of real flower photos (the `photos_folder` fixture: 30 JPEG files of
daisy, rose and tulip from the real shards), copied and then spoiled the way a learner's folder is.
"""

import io
import os
import shutil
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS_PER_CLASS
from flowers_tl import exercises, messages, own_photos, photo_checks
from flowers_tl.errors import DataError


def copy_of(photos_folder, tmp_path, keep=None):
    """A copy of the photo folder in tmp_path; `keep`: {class: how many of its photos to keep}."""
    folder = tmp_path / "my_photos"
    shutil.copytree(photos_folder, folder)
    for name, count in (keep or {}).items():
        for path in sorted((folder / name).iterdir())[count:]:
            path.unlink()
    return folder


def test_a_balanced_folder_of_real_photos_has_no_problem(photos_folder):
    check = photo_checks.check_photos(str(photos_folder), 192)
    assert check.classes == ["daisy", "rose", "tulip"]
    assert check.counts == {"daisy": PHOTOS_PER_CLASS, "rose": PHOTOS_PER_CLASS, "tulip": PHOTOS_PER_CLASS}
    assert check.ok and check.problems == []
    assert check.summary() == f"No problem found: {3 * PHOTOS_PER_CLASS} photos in 3 classes."


def test_a_class_of_three_photos_is_named(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path, keep={"rose": 3})
    check = photo_checks.check_photos(str(folder), 192)
    assert check.counts["rose"] == 3
    assert "Class 'rose' has only 3 photos: give it at least 10 (50 or more is better)." in check.problems
    assert not any("'daisy' has only" in problem or "'tulip' has only" in problem for problem in check.problems)


def test_a_strong_imbalance_is_named_and_a_mild_one_is_not(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path, keep={"rose": 10})
    check = photo_checks.check_photos(str(folder), 192)
    assert check.problems == [f"Classes out of balance: 'daisy' has {PHOTOS_PER_CLASS} photos, 'rose' only 10. The "
                              "model will lean towards 'daisy': add photos of 'rose', or leave some of 'daisy' out."]
    shutil.copy(photos_folder / "rose" / "rose-10.jpg", folder / "rose" / "rose-10.jpg")  # 30 against 11
    assert photo_checks.check_photos(str(folder), 192).ok


def test_an_unreadable_file_is_named_with_why_and_not_counted(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path)
    photo = (folder / "tulip" / "tulip-00.jpg").read_bytes()
    (folder / "tulip" / "cut-short.jpg").write_bytes(photo[: len(photo) // 3])  # an interrupted copy
    (folder / "daisy" / "notes.txt").write_text("taken in May")
    check = photo_checks.check_photos(str(folder), 192)
    assert check.counts["tulip"] == PHOTOS_PER_CLASS
    cut = [problem for problem in check.problems if "cut-short.jpg" in problem]
    assert len(cut) == 1 and cut[0].startswith(f"'{folder / 'tulip' / 'cut-short.jpg'}' cannot be used: truncated")
    assert any(f"'{folder / 'daisy' / 'notes.txt'}' cannot be used: not a picture file name" in problem
               for problem in check.problems)


def test_the_same_file_in_two_classes_is_named(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path)
    shutil.copy(folder / "rose" / "rose-04.jpg", folder / "tulip" / "maybe-a-tulip.jpg")
    check = photo_checks.check_photos(str(folder), 192)
    assert check.problems == [f"The same photo is in two classes: '{folder / 'rose' / 'rose-04.jpg'}' and "
                              f"'{folder / 'tulip' / 'maybe-a-tulip.jpg'}'. Keep it only in its right class."]


def test_the_same_photo_twice_in_one_class_is_named(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path)
    (folder / "daisy" / "holiday").mkdir()
    shutil.copy(folder / "daisy" / "daisy-07.jpg", folder / "daisy" / "holiday" / "IMG_0007.jpg")
    check = photo_checks.check_photos(str(folder), 192)
    assert check.counts["daisy"] == PHOTOS_PER_CLASS + 1
    assert check.problems == [f"The same photo twice in 'daisy': '{folder / 'daisy' / 'daisy-07.jpg'}' and "
                              f"'{folder / 'daisy' / 'holiday' / 'IMG_0007.jpg'}'. Remove one, or it may be both "
                              "trained on and used to measure the model."]


def test_tiny_pictures_are_named_for_the_chosen_image_size(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path)
    Image.open(folder / "rose" / "rose-02.jpg").resize((40, 30)).save(folder / "rose" / "thumbnail.jpg")
    check = photo_checks.check_photos(str(folder), [192, 192])
    assert check.problems == [f"'{folder / 'rose' / 'thumbnail.jpg'}' is only 40x30 pixels, far smaller than the "
                              "model's 192x192: it will be blurry. Use a larger photo."]
    assert photo_checks.check_photos(str(folder), 96).ok  # 30 px is a quarter of 120: fine for a 96 px model


def test_the_result_is_a_table_in_a_notebook_and_plain_text_elsewhere(photos_folder, tmp_path):
    folder = copy_of(photos_folder, tmp_path, keep={"rose": 3})
    check = photo_checks.check_photos(str(folder), 192)
    page = check._repr_html_()
    assert "<table>" in page and "<td style='text-align:left'>rose</td><td style='text-align:right'>3</td>" in page
    assert "2 problems to look at:" in page and "<li>Class &#x27;rose&#x27; has only 3 photos" in page
    lines = str(check).splitlines()
    assert lines[:5] == ["class        photos", "daisy            30", "rose              3", "tulip            30",
                         "all classes      63"]
    assert lines[6] == "2 problems to look at:" and lines[7].startswith("- Class 'rose' has only 3 photos")
    messages.set_language("ru")
    try:
        russian = str(photo_checks.check_photos(str(folder), 192))
    finally:
        messages.set_language("en")
    assert russian.startswith("класс") and "2 замечания, на которые стоит взглянуть:" in russian
    assert "В классе 'rose' всего 3 фотографии" in russian


def test_the_sample_grid_shows_a_row_per_class(photos_folder):
    from flowers_tl import plots

    check = photo_checks.check_photos(str(photos_folder), 192)
    figure = plots.display_photos_per_class(check.photos, per_class=4)
    assert len(figure.axes) == 12
    titles = [axes.get_title(loc="left") for axes in figure.axes if axes.get_title(loc="left")]
    assert titles == ["daisy (30)", "rose (30)", "tulip (30)"]
    first = np.asarray(figure.axes[0].images[0].get_array())
    assert first.shape == (128, 128, 3) and first.std() > 10  # a real photo, not a blank


def zip_of(entries):
    """Zip bytes of {name: bytes}; a value None makes the entry a symbolic link to '/etc/passwd'."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, contents in entries.items():
            if contents is None:
                link = zipfile.ZipInfo(name)
                link.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(link, "/etc/passwd")
            else:
                archive.writestr(name, contents)
    return buffer.getvalue()


def test_an_uploaded_zip_is_unpacked_to_its_class_folders(photos_folder, tmp_path):
    photo = (photos_folder / "daisy" / "daisy-00.jpg").read_bytes()
    archive = zip_of({"my_photos/daisy/a.jpg": photo, "my_photos/rose/b.jpg": photo,
                      "my_photos/rose/link.jpg": None, "__MACOSX/my_photos/._a.jpg": b"resource fork"})
    folder = own_photos.unpack_zip(archive, str(tmp_path / "unpacked"))
    assert folder == str(tmp_path / "unpacked" / "my_photos")
    assert sorted(os.listdir(folder)) == ["daisy", "rose"]
    assert os.listdir(os.path.join(folder, "rose")) == ["b.jpg"]  # the link was not made
    assert not (tmp_path / "unpacked" / "__MACOSX").exists()
    with pytest.raises(DataError, match="already exists: unpack into another folder"):
        own_photos.unpack_zip(archive, str(tmp_path / "unpacked"))


def test_a_zip_entry_that_leaves_the_folder_stops_everything(tmp_path):
    (tmp_path / "evil.zip").write_bytes(zip_of({"photos/daisy/a.jpg": b"x", "photos/../../escaped.jpg": b"x"}))
    with pytest.raises(DataError) as error:
        own_photos.unpack_zip(str(tmp_path / "evil.zip"), str(tmp_path / "out"))
    assert str(error.value).startswith(f"'photos/../../escaped.jpg' in '{tmp_path / 'evil.zip'}' would be written "
                                       "outside the folder")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escaped.jpg").exists()
    with pytest.raises(DataError, match="is not a zip file"):
        own_photos.unpack_zip(b"not a zip", str(tmp_path / "out"))


def test_the_photo_folder_comes_from_the_argument_then_the_variable(monkeypatch):
    monkeypatch.setenv(own_photos.PHOTOS_ENV_VARIABLE, "/data/photos")
    assert own_photos.photo_folder("mine") == "mine"
    assert own_photos.photo_folder("") == "/data/photos"
    monkeypatch.delenv(own_photos.PHOTOS_ENV_VARIABLE)
    assert own_photos.photo_folder("") is None


def test_course_photos_make_a_folder_of_three_classes(real_data_pattern, tmp_path):
    folder = own_photos.course_photos(str(tmp_path / "course_photos"), per_class=12, pattern=real_data_pattern)
    check = photo_checks.check_photos(folder, 192)
    assert check.counts == {"daisy": 12, "rose": 12, "tulip": 12}
    assert [entry for entry in os.listdir(tmp_path) if entry.startswith(".")] == []  # nothing half-made left
    assert own_photos.course_photos(folder, per_class=99, pattern=real_data_pattern) == folder  # kept as it is
    assert photo_checks.check_photos(folder, 192).counts["rose"] == 12


def test_each_validation_photo_leads_back_to_its_file(photos_folder, tmp_path):
    """Photo #N of the validation set (the numbering of `top_losses`) is the picture of file N."""
    import flowers_tl as ftl

    report = ftl.convert_folder(str(photos_folder), str(tmp_path / "shards"), image_size=96, shards=10)
    split = ftl.split_shards(str(tmp_path / "shards" / "*.tfrec"), validation_shards=3)
    files = own_photos.validation_files(split, str(photos_folder))
    photos, labels = ftl.images_and_labels(ftl.get_validation_dataset(split.validation_shards, 96, 8),
                                           split.validation_images)
    assert len(files) == len(photos) == split.validation_images > 8 and report.images == 3 * PHOTOS_PER_CLASS
    every_file = sorted(str(path) for path in photos_folder.glob("*/*.jpg"))
    pictures = np.stack([ftl.load_picture(path, 96) for path in every_file])
    for photo, label, path in zip(photos, labels, files):
        assert os.path.dirname(path) == str(photos_folder / report.classes[label])
        distances = np.abs(pictures - photo).mean(axis=(1, 2, 3))
        assert every_file[int(distances.argmin())] == path  # of all the photos, its own file is the nearest
        assert distances.min() < 8 < np.sort(distances)[1]  # the same picture (JPEG aside), and no other near it


def test_a_model_of_six_classes_trains_evaluates_and_explains(photos_folder, tmp_path, weights_path):
    """A learner's own classes, more than the course's five: every record is checked against the
    model's own names, not refused as 'outside 0..4'."""
    import flowers_tl as ftl

    folder = tmp_path / "six"
    for name in ("daisy", "rose", "tulip"):
        photos = sorted((photos_folder / name).iterdir())
        for half, part in (("a", photos[:15]), ("b", photos[15:])):
            (folder / f"{name}_{half}").mkdir(parents=True)
            for photo in part:
                shutil.copy(photo, folder / f"{name}_{half}" / photo.name)
    report = ftl.convert_folder(str(folder), str(tmp_path / "shards"), image_size=96, shards=6)
    split = ftl.split_shards(str(tmp_path / "shards" / "*.tfrec"), validation_shards=2)
    model = ftl.build_model(96, class_names=report.classes, head="gap", weights=weights_path)
    ftl.compile_model(model)
    result = ftl.train(model, split, epochs=1, verbose=0)
    scores = ftl.evaluate(model, split.validation_shards, classes=report.classes)
    worst = ftl.top_losses(model, split, 3)
    assert len(report.classes) == 6 and result.history["val_accuracy"]
    assert scores["images"] == split.validation_images and len(scores["confusion_matrix"]) == 6
    assert max(item.true_class for item in worst) < 6 and len(worst) == 3


SCORES = {"per_class_accuracy": {"daisy": 0.9, "rose": 0.5, "tulip": 0.5, "empty": None}}


class Counts:
    """What the share exercise reads of `photo_check`: the photos of each class."""

    def __init__(self, **counts):
        self.counts = counts


@pytest.mark.parametrize("share, expected", [
    (exercises.____, exercises.NOT_ATTEMPTED),
    ("0.2", "`VALIDATION_SHARE` should be a number such as 0.2 (a fifth of the photos), but it is a str."),
    (20, "`VALIDATION_SHARE` is 20: a share is a number between 0 and 1, such as 0.2 for a fifth of the photos."),
    (0.5, "A share of 0.5 keeps too many photos away from training: the model learns only from what is left. Keep "
          "it at 0.4 or below (0.2 is the usual choice)."),
    (0.05, "With a share of 0.05, class 'cat' keeps about 1 photo for validation: too few to measure it. Take a "
           "larger share, or add photos to that class."),
    (0.1, "With a share of 0.1, class 'cat' keeps about 2 photos for validation: too few to measure it. Take a "
          "larger share, or add photos to that class."),
    (0.2, exercises.CORRECT.format(what=exercises.validation_share.what)),
])
def test_the_validation_share_is_judged_against_the_smallest_class(share, expected):
    verdict = exercises.validation_share.verdict(share, photo_check=Counts(cat=20, dog=200))
    assert verdict.message == expected
    assert verdict.ok is (True if share == 0.2 else None if share is exercises.____ else False)


def test_a_wrong_share_hands_on_the_course_answer(capsys):
    assert exercises.validation_share.or_solution(0.3, photo_check=Counts(cat=20)) == 0.3
    assert exercises.validation_share.or_solution(0.9, photo_check=Counts(cat=20)) == 0.2
    assert capsys.readouterr().out.startswith("Using the course's answer from here on")


@pytest.mark.parametrize("answer, expected", [
    ("cat", "'cat' is not one of your classes (daisy, rose, tulip): copy a name from the table above."),
    ("daisy", "Class 'daisy' has a validation accuracy of 90%, but 'rose' has 50%: look for the smallest number in "
              "the table."),
    ("rose", exercises.CORRECT.format(what=exercises.worst_class.what)),
    ("tulip", exercises.CORRECT.format(what=exercises.worst_class.what)),  # a tie: either is the worst
])
def test_the_worst_class_is_read_off_the_table(answer, expected):
    assert exercises.worst_class.verdict(answer, scores=SCORES).message == expected
    assert exercises.worst_class.or_solution(answer, scores=SCORES) in ("rose", "tulip")
