"""ResNets built from their architecture (He et al., CVPR 2016, Table 1), as torchvision does.

:func:`resnet` lays out the stem, four stages of basic or bottleneck blocks and the classifier
exactly as ``torchvision/models/resnet.py`` (pytorch/vision): "ResNet v1.5", where a
bottleneck block downsamples with stride 2 on its 3x3 convolution (not the first 1x1), the
projection shortcut is a strided 1x1 conv + BatchNorm used when the shape changes, convs have
no bias, and the classifier is a global average pool and one linear layer with bias. Layer
names follow torchvision's ``named_modules`` (``layer2.0.conv2``, ``layer2.0.downsample.0``).

torchvision reports for ``resnet50`` (``ResNet50_Weights.IMAGENET1K_V1`` meta):
``num_params = 25557032`` and ``_ops = 4.089`` "GFLOPS" at 224x224, which are multiply-adds.

>>> m = resnet("resnet50", block="bottleneck", blocks=(3, 4, 6, 3))
>>> m.n_params, round(m.forward_macs / 1e9, 3)
(25557032, 4.089)
"""

from __future__ import annotations

from perfmodel.errors import ModelError
from perfmodel.workloads.convnet import (
    BatchNorm2d,
    Conv2d,
    ConvNet,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
)

__all__ = ["resnet", "BLOCKS"]

BLOCKS = ("basic", "bottleneck")
_EXPANSION = {"basic": 1, "bottleneck": 4}
# blocks per stage: the layers are built one by one, so a depth is bounded far tighter than a width
# (the deepest published ResNet, ResNet-1001, has 111 bottleneck blocks per stage)
MAX_BLOCKS = 1000


def _conv_bn(p: str, i: int, cin: int, cout: int, k: int, stride: int, groups: int = 1) -> tuple:
    return (Conv2d(in_channels=cin, out_channels=cout, kernel=k, stride=stride, padding=k // 2,
                   groups=groups, name=f"{p}conv{i}"),
            BatchNorm2d(channels=cout, name=f"{p}bn{i}"))


def _block(kind: str, p: str, cin: int, planes: int, stride: int, groups: int,
           width_per_group: int) -> tuple:
    """One block (a Residual + its final ReLU); ``p`` is the name prefix, e.g. ``layer1.0.``."""
    cout = planes * _EXPANSION[kind]
    relu = (ReLU(name=f"{p}relu"),)
    if kind == "basic":
        main = _conv_bn(p, 1, cin, planes, 3, stride) + relu + _conv_bn(p, 2, planes, planes, 3, 1)
    else:
        width = planes * width_per_group // 64 * groups
        main = (_conv_bn(p, 1, cin, width, 1, 1) + relu
                + _conv_bn(p, 2, width, width, 3, stride, groups) + relu
                + _conv_bn(p, 3, width, cout, 1, 1))
    shortcut = ()
    if stride != 1 or cin != cout:
        shortcut = (Conv2d(in_channels=cin, out_channels=cout, kernel=1, stride=stride,
                           name=f"{p}downsample.0"),
                    BatchNorm2d(channels=cout, name=f"{p}downsample.1"))
    return (Residual(main=main, shortcut=shortcut, name=p.rstrip(".")),) + relu


def resnet(name: str, *, block: str, blocks: tuple[int, ...], n_classes: int = 1000,
           input_shape: tuple[int, int, int] = (3, 224, 224), groups: int = 1,
           width_per_group: int = 64, description: str = "", source: str = "") -> ConvNet:
    """Build a ResNet: stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), four stages of widths
    64, 128, 256, 512 (x4 for bottleneck outputs) with ``blocks[i]`` blocks each, the first
    block of stages 2-4 striding by 2; then global average pool and a linear classifier.

    ``groups`` and ``width_per_group`` give ResNeXt / wide ResNets as torchvision does
    (bottleneck width = planes * width_per_group / 64 * groups).
    """
    if block not in BLOCKS:
        raise ModelError(f"model '{name}' block: expected one of {', '.join(BLOCKS)}, "
                         f"got {block!r}")
    if len(blocks) != 4:
        raise ModelError(f"model '{name}' blocks: expected 4 stage depths, got {list(blocks)}")
    if not all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BLOCKS for b in blocks):
        raise ModelError(f"model '{name}' blocks: expected 4 integers in [1, {MAX_BLOCKS}], got {list(blocks)}")
    if block == "basic" and (groups != 1 or width_per_group != 64):
        raise ModelError(f"model '{name}' groups: basic blocks support only groups=1 and "
                         f"width_per_group=64, got {groups} and {width_per_group}")
    cin = input_shape[0] if input_shape else 3
    layers: tuple = (_conv_bn("", 1, cin, 64, 7, 2) + (ReLU(name="relu"),)
                     + (MaxPool2d(kernel=3, stride=2, padding=1, name="maxpool"),))
    cin = 64
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for j in range(depth):
            stride = 2 if stage > 1 and j == 0 else 1
            layers += _block(block, f"layer{stage}.{j}.", cin, planes, stride, groups,
                             width_per_group)
            cin = planes * _EXPANSION[block]
    layers += (GlobalAvgPool(name="avgpool"), Flatten(name="flatten"),
               Linear(in_features=cin, out_features=n_classes, name="fc"))
    return ConvNet(name=name, input_shape=tuple(input_shape), layers=layers,
                   description=description, source=source)
