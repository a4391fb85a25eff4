"""Image splits over one decoded uint8 store, and batches made, augmented and normalized as whole tensors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from biolens.devices import DEVICE_FRACTION, fits_on_device, free_device_memory
from biolens.data.images.transforms import BatchAugment, center_crop, match_channels, normalize, to_float
from biolens.data.sampling import Batches, target_array
from biolens.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class ImageSplit:
    """One split: ``rows`` index the shared store ``images`` ``(N, C, S, S)`` uint8 (memory-mapped or in RAM)."""

    images: np.ndarray
    rows: np.ndarray  # (n,) ascending int64
    y: np.ndarray | None  # (n,) int64
    ids: np.ndarray  # (n,) str

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """uint8 ``(b, C, S, S)`` for split positions (sorted, so a memory map reads forward)."""
        return np.ascontiguousarray(self.images[self.rows[positions]])


class ImageBatches(Batches):
    """Iterable of ``{"x": (B, C, size, size) float, "y": (B,), "index": (B,)}`` on ``device``.

    Train: random resized crop / rotation / flip / jitter per image (``augment``), seeded per epoch via
    ``set_epoch``. Eval: center crop only. Both then adapt channels and normalize with the contract's mean/std.

    How the uint8 pixels reach the device (``transfer``, see :func:`resolve_transfer`):

    - ``resident``: the split's rows are copied once into a device tensor (on CPU: an in-RAM tensor) and each
      batch is an index on the device; nothing crosses the bus after the first epoch.
    - ``staged``: each batch is gathered from the (memory-mapped) store into a reused pinned host buffer and
      copied with ``non_blocking=True`` (two buffers alternate, guarded by CUDA events, so the next batch is
      gathered while the previous copy is still in flight).
    - ``plain``: gather + ``.to(device)``; the CPU default.

    Augmentation and normalization always run afterwards as whole-batch torch ops on the target device, so the
    three transfers give identical tensors for the same seed.
    """

    def __init__(self, split: ImageSplit, batch_size: int, *, size: int, channels: int, mean: list[float],
                 std: list[float], shuffle: bool = False, augment: BatchAugment | None = None,
                 device: torch.device | str = "cpu", seed: int = 0, resident: bool | str = "auto",
                 transfer: str | None = None, channels_last: bool = False):
        super().__init__(len(split), batch_size, shuffle=shuffle, device=device, seed=seed)
        self.split = split
        self.size = size
        self.channels = channels
        self.augment = augment
        self.channels_last = channels_last
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device)
        self.y = None if split.y is None else torch.from_numpy(target_array(split.y))
        self.transfer = transfer or resolve_transfer(resident, self.device, split_nbytes(split))
        if self.transfer not in TRANSFERS:
            raise ConfigError(f"unknown image transfer {self.transfer!r}; expected one of: {', '.join(TRANSFERS)}")
        self.store: torch.Tensor | None = None
        self._staging: list[torch.Tensor] = []
        self._events: list[torch.cuda.Event | None] = []
        if self.transfer == "resident":
            self.store = resident_store(split, self.device)
        if self.y is not None:
            self.y = self.y.to(self.device)
        log.debug("image batches: %d rows, transfer %s, device %s", len(split), self.transfer, self.device)

    @property
    def augmentations(self) -> list[str]:
        return ["image augmentation"] if self.augment is not None else []

    def transform(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """uint8 ``(B, C, S, S)`` on the device → normalized float ``(B, channels, size, size)``."""
        x = to_float(x)
        x = self.augment(x, gen) if self.augment is not None and gen is not None else center_crop(x, self.size)
        x = normalize(match_channels(x, self.channels), self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _staged(self, pos: np.ndarray, k: int) -> torch.Tensor:
        """Gather rows into staging buffer ``k % 2`` (pinned on CUDA) and start its copy to the device."""
        shape = (self.batch_size, *self.split.images.shape[1:])
        if not self._staging:
            pin = self.device.type == "cuda"
            self._staging = [torch.empty(shape, dtype=torch.uint8, pin_memory=pin) for _ in range(2)]
            self._events = [None, None]
        slot = k % 2
        if self._events[slot] is not None:
            self._events[slot].synchronize()  # the copy that last read this buffer has finished
        buf = self._staging[slot][: len(pos)]
        np.take(self.split.images, self.split.rows[pos], axis=0, out=buf.numpy(), mode="clip")  # clip: unbuffered
        x = buf.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            ev = torch.cuda.Event()
            ev.record()
            self._events[slot] = ev
        elif x.data_ptr() == buf.data_ptr():
            x = x.clone()  # CPU target: never hand out the reused buffer itself
        return x

    def _pixels(self, pos: np.ndarray, index: torch.Tensor, k: int) -> torch.Tensor:
        """uint8 ``(b, C, S, S)`` on the device for sorted split positions ``pos`` (``index``: the same, on it)."""
        if self.store is not None:
            return self.store[index]
        if self.transfer == "staged":
            return self._staged(pos, k)
        return torch.from_numpy(self.split.read(pos)).to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = self.epoch_generator()  # the whole epoch order is drawn before the first augmentation
        for k, rows in enumerate(self.epoch_plan(gen)):
            pos = np.sort(rows.numpy())
            index = torch.from_numpy(pos.astype(np.int64)).to(self.device, non_blocking=True)
            x = self._pixels(pos, index, k)
            batch = {"x": self.transform(x, gen if self.augment is not None else None), "index": index}
            if self.y is not None:
                batch["y"] = self.y[index]
            yield batch


TRANSFERS = ("resident", "staged", "plain")


def split_nbytes(split: ImageSplit) -> int:
    """Bytes of a split's uint8 pixels."""
    return len(split) * int(np.prod(split.images.shape[1:]))


def decide_resident(setting: bool | str, device: torch.device | str, nbytes: int, free: int | None,
                    fraction: float = DEVICE_FRACTION) -> bool:
    """Whether a split of ``nbytes`` uint8 pixels is kept whole on ``device``.

    ``true``/``false`` force it; ``auto`` keeps it on a CUDA device when it takes at most ``fraction`` of the
    ``free`` bytes (room is left for the model, activations and the other splits). On CPU ``auto`` streams from the
    memory map (the OS page cache already keeps a hot store in RAM), and ``true`` copies it into a RAM tensor.
    """
    setting = _setting(setting)
    if setting != "auto":
        return setting
    if torch.device(device).type != "cuda" or free is None:
        return False
    return fits_on_device(nbytes, free, fraction)


def resolve_transfer(setting: bool | str, device: torch.device | str, nbytes: int) -> str:
    """``resident``, ``staged`` (pinned buffers + non_blocking, CUDA) or ``plain`` for a split on ``device``."""
    device = torch.device(device)
    if decide_resident(setting, device, nbytes, free_device_memory(device)):
        return "resident"
    return "staged" if device.type == "cuda" else "plain"


def _setting(value: bool | str) -> bool | str:
    if isinstance(value, bool):
        return value
    v = str(value).lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    if v == "auto":
        return "auto"
    raise ConfigError(f"data.image.resident must be auto, true or false; got {value!r}")


def resident_store(split: ImageSplit, device: torch.device, chunk: int = 1024) -> torch.Tensor:
    """The split's rows as one uint8 tensor on ``device``, filled in chunks (host memory stays bounded)."""
    store = torch.empty((len(split), *split.images.shape[1:]), dtype=torch.uint8, device=device)
    for start in range(0, len(split), chunk):
        pos = np.arange(start, min(start + chunk, len(split)))
        store[start:start + len(pos)] = torch.from_numpy(split.read(pos)).to(device)
    return store


def channel_stats(split: ImageSplit, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units over a split's stored pixels (chunked: fine for memory maps)."""
    c = split.images.shape[1]
    total = np.zeros(c)
    sq = np.zeros(c)
    count = 0
    for start in range(0, len(split), chunk):
        a = split.read(np.arange(start, min(start + chunk, len(split)))).astype(np.float64) / 255.0
        total += a.sum(axis=(0, 2, 3))
        sq += (a * a).sum(axis=(0, 2, 3))
        count += a.shape[0] * a.shape[2] * a.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(sq / max(count, 1) - mean**2, 1e-12))
    return [round(float(v), 6) for v in mean], [round(float(max(v, 1e-3)), 6) for v in std]
