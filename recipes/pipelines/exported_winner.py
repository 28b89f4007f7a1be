"""The folder `bench export --best --results results --out exports/winner` writes, evaluated as
shipped: its test DER is the run's it came from, on that run's split."""

from bench.recipe import PretrainedPipeline

recipe = PretrainedPipeline(path="exports/winner")
