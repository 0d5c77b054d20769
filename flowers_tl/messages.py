"""The course's message catalogue: every sentence a learner reads, in English and Russian.

The English sentence is the key (as in gettext, where the msgid is the English text), so the
modules keep their messages as English constants that tests can assert, and `say()` gives them
in the language the notebook chose with `ftl.set_language("ru")`. Format fields ({loss}, {units})
stay the same in every language; tests/test_messages.py checks that each learner-facing constant
has a Russian translation with the same fields.
"""

LANGUAGES = ("en", "ru")
UNKNOWN_LANGUAGE = "Unknown language '{language}': use one of {languages}."

RUSSIAN = {
    # flowers_tl/accelerator.py: the line detect_accelerator() prints
    "Running on {kind} with 1 replica (Keras backend: {backend})":
        "Работаем на {kind}, 1 реплика (бэкенд Keras: {backend})",
    "Running on {kind} with {replicas} replicas (Keras backend: {backend})":
        "Работаем на {kind}, реплик: {replicas} (бэкенд Keras: {backend})",
    # flowers_tl/exercises.py: check(), hint(), solution()
    "Correct: {what} is exactly what the course needs.":
        "Верно: {what} — именно то, что нужно курсу.",
    "Not attempted yet: replace every ____ in the cell above, run it, then run this check again.":
        "Задание ещё не выполнено: замените каждый ____ в ячейке выше, запустите её, затем снова запустите эту проверку.",
    "Your cell did not finish: fix the error above, run the cell again, then run this check again.":
        "Ваша ячейка не выполнилась до конца: исправьте ошибку выше, запустите ячейку снова, затем снова запустите эту проверку.",
    "`{variable}` should be a Keras model (keras.Sequential([...])), but it is a {kind}.":
        "`{variable}` должна быть моделью Keras (keras.Sequential([...])), а это {kind}.",
    ("No pretrained MobileNetV2 inside the model: put `pretrained_model` in the keras.Sequential list, "
     "between the rescaling layer and the Flatten layer."):
        ("В модели нет предобученной MobileNetV2: поставьте `pretrained_model` в список keras.Sequential, "
         "между слоем масштабирования и слоем Flatten."),
    ("The MobileNetV2 still has its ImageNet classifier on top: create it with include_top=False so it "
     "outputs feature maps, not 1000 ImageNet classes."):
        ("У MobileNetV2 остался классификатор ImageNet: создайте её с include_top=False, чтобы она выдавала "
         "карты признаков, а не 1000 классов ImageNet."),
    ("The pretrained MobileNetV2 is still trainable: set pretrained_model.trainable = False so training "
     "keeps its ImageNet weights."):
        ("Предобученная MobileNetV2 всё ещё обучаемая: напишите pretrained_model.trainable = False, чтобы "
         "обучение сохранило её веса ImageNet."),
    ("The model does not turn pixels [0, 255] into [-1, 1] before MobileNetV2 (0 became {low:.3g} and 255 "
     "became {high:.3g}): add keras.layers.Rescaling(1 / 127.5, offset=-1) before pretrained_model."):
        ("Модель не переводит пиксели из [0, 255] в [-1, 1] перед MobileNetV2 (0 стал {low:.3g}, а 255 — "
         "{high:.3g}): добавьте keras.layers.Rescaling(1 / 127.5, offset=-1) перед pretrained_model."),
    ("The output has shape {shape}, not one row of class probabilities per image: put a "
     "keras.layers.Flatten() (or a GlobalAveragePooling2D) before the Dense layer."):
        ("Выход имеет форму {shape}, а не одну строку вероятностей классов на изображение: поставьте "
         "keras.layers.Flatten() (или GlobalAveragePooling2D) перед слоем Dense."),
    "The last layer is a {kind}: end the model with keras.layers.Dense(len(CLASSES), activation='softmax').":
        "Последний слой — {kind}: закончите модель слоем keras.layers.Dense(len(CLASSES), activation='softmax').",
    ("The last Dense layer has {units} units, but there are {classes} classes: use "
     "keras.layers.Dense({classes}, ...) so there is one probability per class."):
        ("У последнего слоя Dense {units} нейронов, а классов {classes}: используйте "
         "keras.layers.Dense({classes}, ...), чтобы на каждый класс была одна вероятность."),
    ("The last Dense layer's activation is '{activation}': use activation='softmax' so the outputs are "
     "probabilities that add up to 1."):
        ("Активация последнего слоя Dense — '{activation}': используйте activation='softmax', чтобы выходы "
         "были вероятностями с суммой 1."),
    ("The model is not compiled yet: call model.compile(optimizer='adam', "
     "loss='sparse_categorical_crossentropy', metrics=['accuracy'])."):
        ("Модель ещё не скомпилирована: вызовите model.compile(optimizer='adam', "
         "loss='sparse_categorical_crossentropy', metrics=['accuracy'])."),
    ("The loss '{loss}' expects one-hot labels, but the dataset gives integer classes (0 to 4): use "
     "loss='sparse_categorical_crossentropy'."):
        ("Функция потерь '{loss}' ждёт метки в формате one-hot, а набор данных даёт номера классов (от 0 до 4): "
         "используйте loss='sparse_categorical_crossentropy'."),
    "The loss '{loss}' is not a classification loss: use loss='sparse_categorical_crossentropy'.":
        "Функция потерь '{loss}' не для классификации: используйте loss='sparse_categorical_crossentropy'.",
    ("The loss uses from_logits=True, but the last layer already applies softmax: use "
     "loss='sparse_categorical_crossentropy' (from_logits=False)."):
        ("Функция потерь использует from_logits=True, но последний слой уже применяет softmax: используйте "
         "loss='sparse_categorical_crossentropy' (from_logits=False)."),
    "The model has no accuracy metric: compile it with metrics=['accuracy'] to see how often it is right.":
        "У модели нет метрики точности: скомпилируйте её с metrics=['accuracy'], чтобы видеть, как часто она права.",
    ("Using the course's solution for now, so that the next cells run; finish the exercise to train your "
     "own model."):
        ("Пока используется решение курса, чтобы следующие ячейки работали; выполните задание, чтобы обучить "
         "свою модель."),
    ("The model was not built inside the accelerator's scope, so it would not train on all {replicas} "
     "replicas: create pretrained_model and the Sequential model in `with accelerator.scope():`."):
        ("Модель создана не внутри области ускорителя и не будет обучаться на всех {replicas} репликах: "
         "создайте pretrained_model и модель Sequential внутри `with accelerator.scope():`."),
    ("This model failed its check, so it is not trained: {problem} (To train it anyway: "
     "ftl.train(..., ignore_check=True).)"):
        ("Эта модель не прошла проверку, поэтому она не обучается: {problem} (Чтобы всё равно обучить её: "
         "ftl.train(..., ignore_check=True).)"),
    ("`{variable}` should be what model.fit returns (a keras.callbacks.History), but it is a {kind}: write "
     "{variable} = model.fit(...)."):
        ("`{variable}` должна быть тем, что возвращает model.fit (keras.callbacks.History), а это {kind}: "
         "напишите {variable} = model.fit(...)."),
    "The model trained for {trained} epoch(s), not {epochs}: pass epochs=PACE.baseline_epochs to model.fit.":
        "Модель обучалась эпох: {trained}, а нужно {epochs}: передайте epochs=PACE.baseline_epochs в model.fit.",
    ("An epoch had {steps} steps: the training dataset repeats forever, so pass steps_per_epoch=steps_per_epoch "
     "to model.fit."):
        ("В эпохе было шагов: {steps}; обучающий набор данных бесконечен, поэтому передайте "
         "steps_per_epoch=steps_per_epoch в model.fit."),
    ("No validation accuracy in the history: pass validation_data=validation_dataset to model.fit, to see how "
     "the model does on photos it never trains on."):
        ("В истории нет точности на валидации: передайте validation_data=validation_dataset в model.fit, чтобы "
         "видеть, как модель справляется с фотографиями, на которых она не обучается."),
    "a model.fit call with epochs, steps_per_epoch and validation_data":
        "вызов model.fit с epochs, steps_per_epoch и validation_data",
    "Solution:\n{code}": "Решение:\n{code}",
    "a single Dense softmax layer on the flattened pixels":
        "один слой Dense с softmax на развёрнутых в вектор пикселях",
    "a frozen MobileNetV2 with a Flatten and Dense softmax head, compiled for integer labels":
        "замороженная MobileNetV2 с головой из Flatten и Dense с softmax, скомпилированная для целочисленных меток",
    # flowers_tl/exercises.py: the comments of the solutions solution() prints (as in notebooks/i18n/ru.json)
    "pixels [0, 255] -> [0, 1]": "пиксели [0, 255] -> [0, 1]",
    "repeats forever": "повторяется бесконечно",
    "batches in one pass over the training photos": "батчей в одном проходе по обучающим фотографиям",
    "the dataset shuffles itself": "набор данных перемешивает себя сам",
    "keep the ImageNet features as they are": "оставляем признаки ImageNet как есть",
    "pixels [0, 255] -> [-1, 1], as MobileNetV2 expects": "пиксели [0, 255] -> [-1, 1], как ждёт MobileNetV2",
    # flowers_tl/exercises.py: CoursePace
    "Pace: {mode}, {epochs} epoch(s) of training": "Темп: {mode}, эпох обучения: {epochs}",
    "quick mode ({variable}=1)": "быстрый режим ({variable}=1)",
    "full course": "полный курс",
    # flowers_tl/learner_errors.py: the short messages of the known mistakes
    "A ____ blank is still in this cell: replace it with your code, then run the cell again.":
        "В этой ячейке остался пропуск ____: замените его своим кодом и запустите ячейку снова.",
    ("The weights file is for a MobileNetV2 without its ImageNet classifier: create it with "
     "include_top=False."):
        ("Файл весов — для MobileNetV2 без классификатора ImageNet: создайте её с include_top=False."),
    ("A layer got images of shape {shape}: every image is [*IMAGE_SIZE, 3], write "
     "keras.Input(shape=[*IMAGE_SIZE, 3]) and input_shape=[*IMAGE_SIZE, 3]."):
        ("Слой получил изображения формы {shape}: каждое изображение — [*IMAGE_SIZE, 3], напишите "
         "keras.Input(shape=[*IMAGE_SIZE, 3]) и input_shape=[*IMAGE_SIZE, 3]."),
    ("The loss expects one-hot labels, but the dataset gives integer classes (0 to 4): compile with "
     "loss='sparse_categorical_crossentropy'."):
        ("Функция потерь ждёт метки в формате one-hot, а набор данных даёт номера классов (от 0 до 4): "
         "компилируйте с loss='sparse_categorical_crossentropy'."),
    ("`{variable}` does not exist yet: run the exercise's cell above, which assigns it (fix its error first), "
     "then run this check again."):
        ("`{variable}` ещё не существует: запустите ячейку задания выше, которая её задаёт (сначала исправьте в ней "
         "ошибку), затем снова запустите эту проверку."),
    "(The full error message: run %tb in a new cell.)": "(Полное сообщение об ошибке: выполните %tb в новой ячейке.)",
    # flowers_tl/plots.py
    "training": "обучение",
    "validation": "валидация",
    "epoch": "эпоха",
    "model {metric}": "модель: {metric}",
    "loss": "потери",
    "accuracy": "точность",
    "predicted": "предсказано",
    "true": "на самом деле",
    "confusion matrix (accuracy {accuracy:.3f})": "матрица ошибок (точность {accuracy:.3f})",
    # flowers_tl/messages.py
    UNKNOWN_LANGUAGE: "Неизвестный язык '{language}': используйте один из {languages}.",
    # issue 14: pictures and `flowers-tl convert` (files.py, pictures.py, convert.py)
    "'{path}': {reason}": "'{path}': {reason}",
    "{kind}, not a regular file; it was not read": "{kind}, а не обычный файл; он не читался",
    "{size:.0f} MB, more than the {limit:.0f} MB allowed; it was not read":
        "{size:.0f} МБ, больше допустимых {limit:.0f} МБ; файл не читался",
    "cannot be read: {reason}": "не читается: {reason}",
    "it is a file": "это файл",
    "a part of that path is a file": "часть этого пути — файл",
    "a symbolic link that loops back on itself": "символическая ссылка, которая ссылается сама на себя",
    "a FIFO (named pipe)": "FIFO (именованный канал)",
    "a character device": "символьное устройство",
    "a block device": "блочное устройство",
    "a socket": "сокет",
    "a folder": "папка",
    "something else": "что-то иное",
    "cannot write '{path}': {reason}. Choose another output folder (one you can write to, with free space).":
        "не удаётся записать '{path}': {reason}. Выберите другую папку вывода (с правом записи и свободным местом).",
    ("cannot use '{path}' as the output folder: {reason}. Give the path of a folder "
     "(it is created if needed)."):
        ("нельзя использовать '{path}' как папку вывода: {reason}. Укажите путь к папке "
         "(она будет создана при необходимости)."),
    ("'{path}' is being written by another run (process {pid}, lock file '{lock}'): wait for it to "
     "finish or stop it (kill {pid}), or choose another output folder."):
        ("в '{path}' сейчас пишет другой запуск (процесс {pid}, файл блокировки '{lock}'): дождитесь его "
         "окончания или остановите его (kill {pid}), или выберите другую папку вывода."),
    # model files, writes, resumes and signals (modelfile.py, files.py, data.py, model.py, cli.py's runs)
    ("model '{path}' holds a {kind} layer '{name}', which runs code from outside the model file when it is "
     "loaded, so it was not loaded: flowers-tl loads only Keras' own layers and its own. Load only models you "
     "trust, or train one with `flowers-tl train`."):
        ("модель '{path}' содержит слой {kind} '{name}', который при загрузке выполняет код извне файла модели, "
         "поэтому она не загружена: flowers-tl загружает только собственные слои Keras и свои. Загружайте только "
         "модели, которым доверяете, или обучите свою командой `flowers-tl train`."),
    ("model '{path}' names '{kind}' from the module '{module}', code outside Keras and flowers-tl that loading "
     "would import and run, so it was not loaded. Load only models you trust, or train one with "
     "`flowers-tl train`."):
        ("модель '{path}' ссылается на '{kind}' из модуля '{module}' — код вне Keras и flowers-tl, который "
         "загрузка импортировала бы и выполнила, поэтому она не загружена. Загружайте только модели, которым "
         "доверяете, или обучите свою командой `flowers-tl train`."),
    ("'{path}' is not a Keras model saved by flowers-tl: its {config} cannot be read ({reason}); save the "
     "model again with model.save('model.keras')."):
        ("'{path}' — не модель Keras, сохранённая flowers-tl: её {config} не читается ({reason}); сохраните "
         "модель заново через model.save('model.keras')."),
    ("'{path}' is a legacy HDF5 (.h5) Keras model; flowers-tl loads only .keras files. If you trust it, convert "
     "it once in Python: keras.saving.load_model('{path}').save('model.keras'), then give model.keras."):
        ("'{path}' — модель Keras в старом формате HDF5 (.h5); flowers-tl загружает только файлы .keras. Если вы "
         "ей доверяете, преобразуйте её один раз в Python: keras.saving.load_model('{path}').save('model.keras'), "
         "затем укажите model.keras."),
    "stopped by {signal}; run the same command again to resume from '{backup}'.":
        "остановлено сигналом {signal}; запустите ту же команду снова, чтобы продолжить с '{backup}'.",
    "stopped by {signal} before the first epoch ended; run the same command again to start afresh.":
        "остановлено сигналом {signal} до конца первой эпохи; запустите ту же команду снова, чтобы начать заново.",
    ("'{backup}' holds an interrupted run made with other {names}; run the same command again to resume it, "
     "or delete that folder to start afresh"):
        ("в '{backup}' лежит прерванный запуск с другими {names}; запустите ту же команду снова, чтобы "
         "продолжить его, или удалите эту папку, чтобы начать заново"),
    ("'{path}' is a symbolic link; flowers-tl never writes through one: remove it, then run the same command "
     "again."):
        ("'{path}' — символическая ссылка; flowers-tl никогда не пишет через ссылки: удалите её и запустите "
         "ту же команду снова."),
    ("model '{path}' was trained on {count} of the {total} shard(s) it was asked to score ({names}), so its "
     "accuracy there would be too high: score the shards it was validated on ({validated}), with the --data "
     "and --validation-shards it was trained with, or pass --all-shards to score every shard knowingly."):
        ("модель '{path}' обучалась на {count} из {total} шардов, которые её попросили оценить ({names}), поэтому "
         "точность на них была бы завышена: оценивайте шарды, на которых она проверялась ({validated}), с теми "
         "же --data и --validation-shards, что при обучении, или передайте --all-shards, чтобы осознанно "
         "оценить все шарды."),
    ("Warning: model '{path}' was trained on {count} of these {total} shard(s) ({names}): the accuracy below is "
     "higher than on photos it never saw."):
        ("Внимание: модель '{path}' обучалась на {count} из этих {total} шардов ({names}): приведённая ниже точность "
         "выше, чем на фотографиях, которых она не видела."),
    "shard '{shard}' is unreadable or corrupt: {reason}. Copy or convert it again, or remove it from the pattern.":
        ("шард '{shard}' не читается или повреждён: {reason}. Скопируйте или преобразуйте его заново либо уберите "
         "его из шаблона."),
    ("shard '{shard}' is truncated or corrupted after record {records}: the next record, at byte {offset}, does "
     "not fit in its {size} bytes. Copy or convert it again, or remove it from the pattern."):
        ("шард '{shard}' обрезан или повреждён после записи {records}: следующая запись, с байта {offset}, не "
         "помещается в его {size} байт. Скопируйте или преобразуйте его заново либо уберите его из шаблона."),
    "empty (zero-byte) file": "пустой файл (0 байт)",
    "not a picture (unknown file format)": "не изображение (неизвестный формат файла)",
    "truncated or corrupt picture ({detail})": "обрезанное или повреждённое изображение ({detail})",
    ("{pixels} pixels, more than the {limit} million a picture may have "
     "(a decompression bomb, or a scan far larger than a photo): make it smaller first"):
        ("{pixels} пикселей, больше допустимых {limit} миллионов (бомба распаковки или скан намного больше "
         "фотографии): сначала уменьшите изображение"),
    "every pixel of this {mode} picture is NaN or infinite: there is nothing to show":
        "все пиксели этого изображения {mode} — NaN или бесконечность: показывать нечего",
    "every pixel of this {mode} picture has the same value ({value:g}): there is nothing to show":
        "все пиксели этого изображения {mode} имеют одно значение ({value:g}): показывать нечего",
    ("Note: '{path}' is only {width}x{height} pixels, far smaller than the model's "
     "{size}x{size} input: it is enlarged {factor:.0f} times, so expect a blurry picture "
     "and a less reliable answer."):
        ("Заметка: '{path}' — всего {width}x{height} пикселей, намного меньше входа модели "
         "{size}x{size}: изображение увеличено в {factor:.0f} раз, так что оно будет размытым, "
         "а ответ — менее надёжным."),
    ("Note: '{path}' is a {mode} picture (values {low:g} to {high:g}); it was mapped to "
     "8 bits, darkest pixel black and brightest white."):
        ("Заметка: '{path}' — изображение {mode} (значения от {low:g} до {high:g}); оно переведено "
         "в 8 бит: самый тёмный пиксель — чёрный, самый светлый — белый."),
    ("image size {size} is too large: use at most {largest} pixels. Every picture is held "
     "in memory at that size while it is converted ({megabytes:,.0f} MB each at {size}x{size}), and "
     "MobileNetV2's ImageNet weights were trained at 224x224, so larger inputs cost far more "
     "memory and time than they add accuracy; the course uses 192."):
        ("размер изображения {size} слишком велик: используйте не больше {largest} пикселей. Каждое "
         "изображение при преобразовании хранится в памяти в этом размере ({megabytes:,.0f} МБ каждое при "
         "{size}x{size}), а веса ImageNet у MobileNetV2 обучены на 224x224, так что большие входы стоят "
         "намного больше памяти и времени, чем дают точности; в курсе используется 192."),
    "a symbolic link to a folder: not followed (copy or move the photos into the class folder)":
        "символическая ссылка на папку: не открывается (скопируйте или перенесите фотографии в папку класса)",
    ("Note: '{second}' is the same photo as '{first}' ({how}); both were converted. Remove one "
     "if it was copied by mistake: a photo in both the training and validation shards makes the "
     "validation accuracy look better than it is."):
        ("Заметка: '{second}' — та же фотография, что и '{first}' ({how}); преобразованы обе. Удалите одну, "
         "если она скопирована по ошибке: фотография и в обучающих, и в валидационных файлах делает "
         "точность на валидации лучше, чем она есть."),
    "Note: {count} more pair(s) of identical photos.": "Заметка: ещё пар одинаковых фотографий: {count}.",
    "same file contents": "одинаковое содержимое файлов",
    "same pixels": "одинаковые пиксели",
    "Note: removed {count} temporary file(s) left in '{output}' by an interrupted conversion.":
        "Заметка: удалено временных файлов, оставленных в '{output}' прерванным преобразованием: {count}.",
    ("cannot write the shards into '{output}': {reason}. Nothing was written there (its temporary "
     "files were removed); free some space or choose another output folder."):
        ("не удаётся записать файлы TFRecord в '{output}': {reason}. Там ничего не записано (временные "
         "файлы удалены); освободите место или выберите другую папку вывода."),
    ("stopped after {done} of {total} photos; nothing was written to '{output}' (its temporary "
     "files were removed). Run the same command again to convert everything."):
        ("остановлено после {done} из {total} фотографий; в '{output}' ничего не записано (временные файлы "
         "удалены). Запустите ту же команду снова, чтобы преобразовать всё."),
    "convert: {done} of {total} photos ({percent:.0f}%)": "convert: {done} из {total} фотографий ({percent:.0f}%)",
    # issue 15: explain.py, Grad-CAM and top losses (labels drawn by flowers_tl/plots.py)
    "where it looks for {predicted}": "куда смотрит модель: {predicted}",
    "true: {true}\npredicted: {predicted} ({probability:.0%})":
        "на самом деле: {true}\nпредсказано: {predicted} ({probability:.0%})",
    "loss {loss:.2f}": "потери {loss:.2f}",
    "the {count} validation photos with the highest loss": "валидационные фото с наибольшими потерями: {count}",
    "your photo": "ваше фото",
    "probability": "вероятность",
    # issue 16: rooms of their own (frozen.py's progress, pace.py, numbered hints, checks that find the variable)
    "Running the frozen layers once over {images} photos; the epochs then train only the layers after them.":
        "Один проход замороженных слоёв по {images} фотографиям; затем эпохи обучают только слои после них.",
    "Hint {number} of {count}: {hint}": "Подсказка {number} из {count}: {hint}",
    "There are {count} hints: hint(1) to hint({count}); solution() shows the answer.":
        "Подсказок {count}: от hint(1) до hint({count}); solution() покажет ответ.",
    ("keras.layers.Flatten() turns a [192, 192, 3] image into one vector; keras.layers.Dense(len(CLASSES), "
     "activation='softmax') gives one probability per class."):
        ("keras.layers.Flatten() превращает изображение [192, 192, 3] в один вектор; "
         "keras.layers.Dense(len(CLASSES), activation='softmax') даёт одну вероятность на класс."),
    "The labels are integers 0..4, so the loss is the *sparse* categorical cross-entropy.":
        "Метки — целые числа 0..4, поэтому функция потерь — *разреженная* (sparse) категориальная перекрёстная энтропия.",
    "include_top=False removes the ImageNet classifier; pretrained_model.trainable = False freezes it.":
        "include_top=False убирает классификатор ImageNet; pretrained_model.trainable = False замораживает сеть.",
    ("MobileNetV2 expects pixels in [-1, 1]: keras.layers.Rescaling(1 / 127.5, offset=-1) does that inside the "
     "model. Then Flatten, then Dense(len(CLASSES), activation='softmax'), and the loss for integer labels is "
     "'sparse_categorical_crossentropy'."):
        ("MobileNetV2 ждёт пиксели в [-1, 1]: это делает keras.layers.Rescaling(1 / 127.5, offset=-1) внутри "
         "модели. Затем Flatten, затем Dense(len(CLASSES), activation='softmax'), а функция потерь для "
         "целочисленных меток — 'sparse_categorical_crossentropy'."),
    "model.fit(dataset, epochs=..., steps_per_epoch=..., validation_data=...) returns a History.":
        "model.fit(dataset, epochs=..., steps_per_epoch=..., validation_data=...) возвращает History.",
    ("The training dataset never ends, so steps_per_epoch tells Keras where an epoch ends; "
     "validation_data=validation_dataset measures the accuracy on photos the model never trains on."):
        ("Обучающий набор данных бесконечен, поэтому steps_per_epoch говорит Keras, где кончается эпоха; "
         "validation_data=validation_dataset измеряет точность на фотографиях, на которых модель не обучается."),
    # issue 14: commands and environment (flowers_tl/accelerator.py: TF_CONFIG and waiting for workers)
    ("TF_CONFIG {problem}. It should look like "
     "{{\"cluster\": {{\"worker\": [\"host1:port\", \"host2:port\"]}}, "
     "\"task\": {{\"type\": \"worker\", \"index\": 0}}}}; fix it, or unset it "
     "(`unset TF_CONFIG`) to train on this machine alone."):
        ("TF_CONFIG: {problem}. Он должен выглядеть так: "
         "{{\"cluster\": {{\"worker\": [\"host1:port\", \"host2:port\"]}}, "
         "\"task\": {{\"type\": \"worker\", \"index\": 0}}}}; исправьте его или удалите "
         "(`unset TF_CONFIG`), чтобы обучать только на этой машине."),
    "Waiting up to {seconds} s for the other workers named in TF_CONFIG: {addresses}":
        "Ждём до {seconds} с остальных рабочих узлов из TF_CONFIG: {addresses}",
    ("the workers {addresses} named in TF_CONFIG did not answer within {seconds} s: start them "
     "(same TF_CONFIG, each with its own task index), fix their addresses, or unset TF_CONFIG "
     "to train on this machine alone ({variable} sets how long to wait)."):
        ("рабочие узлы {addresses} из TF_CONFIG не ответили за {seconds} с: запустите их (тот же TF_CONFIG, "
         "у каждого свой номер задачи), исправьте их адреса или удалите TF_CONFIG, чтобы обучать только на "
         "этой машине ({variable} задаёт, сколько ждать)."),
    ("this worker cannot listen on {address}, its own address in TF_CONFIG ({problem}): "
     "choose a free port there."):
        ("этот рабочий узел не может слушать адрес {address}, свой адрес в TF_CONFIG ({problem}): "
         "выберите там свободный порт."),
    "{variable}='{value}' is not a number of seconds above 0 (the default is {default}).":
        "{variable}='{value}' — не число секунд больше 0 (по умолчанию {default}).",
    "stopped while waiting for the other workers named in TF_CONFIG":
        "остановлено во время ожидания остальных рабочих узлов из TF_CONFIG",
    # issue 14: a new user's first hour (flowers_tl/sources.py and convert.py: the bucket, else tf_flowers)
    ("Note: the course bucket {bucket} cannot be used ({reason}); using "
     "tensorflow-datasets' tf_flowers instead, converted once to the same format."):
        ("Примечание: бакет курса {bucket} недоступен ({reason}); вместо него используется tf_flowers "
         "из tensorflow-datasets, один раз преобразованный в тот же формат."),
    ("set FLOWERS_TL_DATA to a pattern of local shards (e.g. '/data/flowers/*.tfrec') and "
     "FLOWERS_TL_WEIGHTS to a local MobileNetV2 no-top .h5 file, or make shards from a "
     "photo folder with `flowers-tl convert --folder`."):
        ("задайте FLOWERS_TL_DATA — шаблон локальных шардов (например, '/data/flowers/*.tfrec') — и "
         "FLOWERS_TL_WEIGHTS — локальный файл MobileNetV2 без верхушки (.h5), или сделайте шарды из папки "
         "с фотографиями командой `flowers-tl convert --folder`."),
    ("could not load tensorflow-datasets' tf_flowers: you are offline (no answer from "
     "storage.googleapis.com) and it was never downloaded. Online, it is downloaded once "
     "(about 220 MB); offline, set FLOWERS_TL_DATA to a pattern of local shards (e.g. '/data/flowers/*.tfrec') and "
     "FLOWERS_TL_WEIGHTS to a local MobileNetV2 no-top .h5 file, or make shards from a "
     "photo folder with `flowers-tl convert --folder`."):
        ("не удалось загрузить tf_flowers из tensorflow-datasets: нет сети (storage.googleapis.com не отвечает), "
         "а набор ещё ни разу не скачивался. При подключении к сети он скачивается один раз (около 220 МБ); "
         "без сети задайте FLOWERS_TL_DATA — шаблон локальных шардов (например, '/data/flowers/*.tfrec') — и "
         "FLOWERS_TL_WEIGHTS — локальный файл MobileNetV2 без верхушки (.h5), или сделайте шарды из папки "
         "с фотографиями командой `flowers-tl convert --folder`."),
}

CATALOGUES = {"en": {}, "ru": RUSSIAN}
_language = "en"


def set_language(language: str) -> None:
    """Choose the language of every message the course prints and draws ("en" or "ru")."""
    global _language
    if language not in CATALOGUES:
        raise ValueError(UNKNOWN_LANGUAGE.format(language=language, languages=", ".join(LANGUAGES)))
    _language = language


def current_language() -> str:
    """The language chosen with set_language() ("en" until then)."""
    return _language


def translate(text: str) -> str:
    """`text` in the chosen language (the English text itself when it has no translation)."""
    return CATALOGUES[_language].get(text, text)


def say(text: str, **fields) -> str:
    """`text` translated, then its {fields} filled in."""
    return translate(text).format(**fields)
