import pytest
import torch

from waymo_unet import devices
from waymo_unet.devices import (
    autotune_convolutions,
    cpu_flags_have_native_bf16,
    cpu_has_native_bf16,
    resolve_device,
)

NATIVE = "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
AMX_ONLY = "flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n"
EMULATED = "flags\t\t: fpu sse2 avx2 avx512f\n"
CPUINFO = "processor\t: 0\nmodel name\t: Some CPU\n{flags}\nbugs\t\t: avx512_bf16\n"


def test_auto_is_the_gpu_when_there_is_one(monkeypatch):
    for available, expected in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda available=available: available)
        assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_autotuning_is_for_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    autotune_convolutions(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    autotune_convolutions(torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True


def torch_without(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.delattr(torch.cpu, name, raising=False)


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        ({"avx512_bf16": True, "amx_bf16": False}, True),
        ({"avx512_bf16": False, "amx_bf16": True}, True),
        ({"avx512_bf16": False, "amx_bf16": False}, False),
        ({"architecture": "arm64", "bf16": True}, False),
    ],
)
def test_torch_capabilities_decide_where_torch_has_them(monkeypatch, capabilities, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    assert cpu_has_native_bf16() is expected


@pytest.mark.parametrize(
    ("avx512_bf16", "amx_tile", "expected"),
    [
        (True, False, True),
        (False, True, True),
        (False, False, False),
    ],
)
def test_older_torch_is_asked_through_its_private_helpers(
    monkeypatch, avx512_bf16, amx_tile, expected
):
    torch_without(monkeypatch, "get_capabilities")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx_tile, raising=False)
    assert cpu_has_native_bf16() is expected


@pytest.mark.parametrize(
    ("flags", "expected"), [(NATIVE, True), (AMX_ONLY, True), (EMULATED, False)]
)
def test_without_torch_helpers_the_linux_cpu_flags_decide(monkeypatch, tmp_path, flags, expected):
    torch_without(
        monkeypatch, "get_capabilities", "_is_avx512_bf16_supported", "_is_amx_tile_supported"
    )
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(flags=flags))
    monkeypatch.setattr(devices, "CPUINFO", cpuinfo)
    assert cpu_has_native_bf16() is expected


def test_without_a_cpuinfo_file_bf16_counts_as_emulated(tmp_path):
    assert cpu_flags_have_native_bf16(tmp_path / "missing") is False
    (tmp_path / "no_flags").write_text("processor\t: 0\n")
    assert cpu_flags_have_native_bf16(tmp_path / "no_flags") is False


def test_every_way_of_asking_agrees_on_this_machine():
    answer = cpu_has_native_bf16()
    if devices.CPUINFO.exists():
        assert cpu_flags_have_native_bf16(devices.CPUINFO) is answer
    if hasattr(torch.cpu, "_is_avx512_bf16_supported"):
        private = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        assert private is answer
