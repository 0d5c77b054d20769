"""The command line's wing: what `flowers-tl` needs and no notebook cell imports.

* `cli`: the `flowers-tl` command line (train, evaluate, predict, convert, info);
* `convert`: pictures and tf_flowers to the course's shards;
* `files`: files written whole or not at all, output folders claimed, runs stopped cleanly;
* `runs`: a train run's output folder, its resume and log, the shards a model has seen;
* `modelfile`: what a model file may hold before it is loaded;
* `online`: is the internet there, asked once;
* `cluster` and `multiworker`: TF_CONFIG checked, the wait for the other workers, and training
  across machines.

The course's modules import from here only where a notebook never goes: the tf_flowers
fallback (`sources`), a cluster job (`accelerator`, `training`) and offline weights (`model`).
"""
