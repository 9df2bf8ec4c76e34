"""Comparisons across hardware: one model on several devices (``devices``) and GPUs sharing PCIe
switches (``pcie``, the contention story). ``perfmodel compare devices|pcie`` render these."""

from perfmodel.compare.devices import DEFAULT_WORKERS, DeviceComparison, compare_devices, device_cluster
from perfmodel.compare.pcie import PcieContentionStory, pcie_contention_story, pcie_overheads

__all__ = ["DeviceComparison", "compare_devices", "device_cluster", "DEFAULT_WORKERS", "PcieContentionStory",
           "pcie_contention_story", "pcie_overheads"]
