"""The command line's wing: what `flowers-tl` needs and no notebook cell imports.

* `cli`: the `flowers-tl` command line (train, evaluate, predict, convert, info);
* `convert`: pictures and tf_flowers to the course's shards;
* `files`: files written whole or not at all, output folders claimed, runs stopped cleanly;
* `runs`: a train run's output folder, its resume and log, the shards a model has seen;
* `modelfile`: what a model file may hold before it is loaded;
* `download`: the course's shards and weights copied once, for offline work;
* `cluster` and `multiworker`: TF_CONFIG checked, the wait for the other workers, and training
  across machines (`cluster.choose_accelerator`, the command line's `detect_accelerator`).

One course module imports from here, and only inside the function that needs it: `sources`,
when the course bucket cannot be used and tf_flowers is converted instead.
"""
