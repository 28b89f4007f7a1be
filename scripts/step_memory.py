"""Peak memory of one training step of PyanNet (segmentation-3.0's size) on CPU, per chunk-second:
the measurement behind bench.recipe.budget.STEP_BYTES_PER_CHUNK_SECOND (docs/performance.md).

    .venv/bin/python scripts/step_memory.py 64 10     # batch 64 x 10 s chunks
"""

import resource
import sys

import torch
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.segmentation import PyanNet


def main() -> None:
    batch, duration = int(sys.argv[1]), float(sys.argv[2])
    torch.set_num_threads(1)
    model = PyanNet(sincnet={"stride": 10})
    model.specifications = Specifications(
        problem=Problem.MULTI_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=duration,
        classes=["a", "b", "c"],
    )
    model.build()
    optimizer = torch.optim.Adam(model.parameters())

    def step(size: int) -> None:
        output = model(torch.randn(size, 1, int(duration * 16000)))
        torch.nn.functional.binary_cross_entropy(output, torch.rand_like(output)).backward()
        optimizer.step()
        optimizer.zero_grad()

    step(1)  # warm up: weights, optimizer state, allocator
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(batch)
    rise = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # MiB
    print(f"{batch} x {duration:g} s: {rise:,.0f} MiB, {rise / (batch * duration):.2f} MiB/chunk-s")


if __name__ == "__main__":
    main()
