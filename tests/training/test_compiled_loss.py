"""The training step as one module, model and loss: eager as before, compiled as one graph."""

from __future__ import annotations

import copy
import functools
import shutil

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from tests.tiny_shards import LUT
from waymo_unet.devices import Precision
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.data import ShardDataset
from waymo_unet.training.distributed import DistributedContext
from waymo_unet.training.loop import ModelWithLoss, train_one_epoch
from waymo_unet.training.loss import SegmentationLoss
from waymo_unet.training.run_setup import build_run

UNET = UNetConfig(num_classes=3, base_channels=4, depth=2)
HAS_CPP_COMPILER = any(shutil.which(name) for name in ("g++", "c++", "clang++"))


def batch(channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 3, 16, 24, generator=generator)
    targets = torch.randint(0, 3, (2, 16, 24), generator=generator)
    targets[0, :2] = 255  # ignored pixels
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, targets


def loss_function() -> SegmentationLoss:
    return SegmentationLoss(torch.tensor([1.0, 2.0, 0.5]), 255, dice_weight=0.5)


def gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    return [parameter.grad for parameter in model.parameters()]


@pytest.mark.parametrize("precision", [Precision("cpu"), Precision("cpu", torch.bfloat16)])
def test_eager_model_with_loss_is_the_loss_of_the_logits(precision):
    """As the loop computed it before: the model under autocast, the loss after it."""
    torch.manual_seed(0)
    model = build_unet(UNET)
    twin = copy.deepcopy(model)
    inputs, targets = batch()
    with precision.autocast():
        logits = model(inputs)
    reference = loss_function()(logits, targets)
    reference.backward()

    loss = ModelWithLoss(twin, loss_function(), precision)(inputs, targets)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.equal(loss, reference)
    for mine, theirs in zip(gradients(twin), gradients(model), strict=True):
        assert torch.equal(mine, theirs)


@pytest.mark.skipif(not HAS_CPP_COMPILER, reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # torch.compile's
def test_compiled_model_with_loss_matches_eager():
    # fp32: under bf16, compiled and eager kernels round differently, step by step.
    # channels_last, as on CUDA, where the eager loss copied the logits.
    torch.manual_seed(0)
    model = build_unet(UNET).to(memory_format=torch.channels_last)
    twin = copy.deepcopy(model)
    inputs, targets = batch(channels_last=True)
    eager = ModelWithLoss(model, loss_function(), Precision("cpu"))(inputs, targets)
    eager.backward()
    compiled = torch.compile(ModelWithLoss(twin, loss_function(), Precision("cpu")))
    loss = compiled(inputs, targets)
    loss.backward()
    torch.testing.assert_close(loss, eager, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(gradients(twin), gradients(model), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


class GraphRecorder:
    """A torch.compile backend that runs each captured graph as it is and keeps its ops."""

    def __init__(self) -> None:
        self.graphs: list[set[str]] = []

    def __call__(self, graph_module: torch.fx.GraphModule, example_inputs) -> object:
        self.graphs.append(
            {
                getattr(node.target, "__name__", str(node.target))
                for node in graph_module.graph.nodes
                if node.op == "call_function"
            }
        )
        return graph_module.forward


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # torch.compile's
def test_under_ddp_the_loss_is_compiled_in_the_graph_of_the_model(
    tiny_shards, monkeypatch, one_rank_group
):
    """DDP wraps model and loss, compile wraps DDP: one graph holds convolutions and loss."""
    recorder = GraphRecorder()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=recorder))
    store, index = tiny_shards
    train = ShardDataset(store, index, "training", LUT)
    val = ShardDataset(store, index, "validation", LUT)
    config = TrainConfig(batch_size=4, num_workers=0, precision="fp32", device="cpu", compile=True)
    run = build_run(config, UNET, train, val, [1.0, 2.0, 1.0], 255, DistributedContext(0, 1, 0))
    stats = train_one_epoch(
        run.runnable, run.train_loader, run.optimisation, run.settings, torch.Generator()
    )
    assert stats["batches"] == len(run.train_loader)
    assert any(
        "conv2d" in graph and F.cross_entropy.__name__ in graph for graph in recorder.graphs
    ), recorder.graphs
