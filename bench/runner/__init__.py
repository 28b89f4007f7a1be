"""Running recipes: the stages of one run (:mod:`.stages`), many runs in parallel
(:mod:`.matrix`), ``--dry-run`` (:mod:`.dryrun`) and W&B (:mod:`.tracking`).

Import from the submodule: this face imports nothing, so deciding that a run is already done
never imports torch."""
