"""Explanations: what a trained model looked at (sequences: attention, ISM, attributions, motifs; images: CAMs)."""
