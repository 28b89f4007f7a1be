"""Models: the hub (:mod:`.hub`), a recipe's initial weights (:mod:`.weights`), head conversion
(:mod:`.heads`), speaker embeddings (:mod:`.embeddings`) and CAM++ (:mod:`.campplus`).

Import from the submodule: this face imports nothing, so ``bench.models.hub`` stays torch-free."""
