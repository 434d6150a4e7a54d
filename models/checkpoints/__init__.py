"""Shipped Fashion-MNIST checkpoints (state dicts), their cards.json and MODEL_CARD.md."""
