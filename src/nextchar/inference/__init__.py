"""Using a trained model: evaluate (bits per character), generate, dynamic evaluation,
compare, the cell view, export."""
