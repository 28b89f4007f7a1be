"""Read the records of an offline W&B run file (``run-*.wandb``) with wandb's own protobufs.

The file is a LevelDB-style log (wandb's transaction log): a 7-byte header (":W&B", magic 0xBEE1,
version 0), then 32 KiB blocks of records, each with a 7-byte header (crc32c, length, type)
where type is FULL=1, FIRST=2, MIDDLE=3, LAST=4.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def payloads(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), "not a W&B transaction log"
    offset, pending = HEADER, b""
    while offset + HEADER <= len(data):
        room = BLOCK - offset % BLOCK
        if room < HEADER:
            offset += room
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + HEADER])
        if kind == 0 and length == 0:  # zero padding at a block's end
            offset += room
            continue
        chunk = data[offset + HEADER : offset + HEADER + length]
        offset += HEADER + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


def read_run(path: Path) -> dict[str, Any]:
    """Config, logged history rows and summary of one offline run file."""
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    for payload in payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "config":
            for item in record.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "run" and record.run.config.update:
            for item in record.run.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "history":
            history.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return {"config": config, "history": history}
