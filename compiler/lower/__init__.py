"""Lowering of IR nodes to NPU instructions, one module per family of ops."""
