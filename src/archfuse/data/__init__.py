"""Data modules: image classification sets held as tensors in memory."""
