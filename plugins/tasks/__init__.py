"""Downstream evaluation tasks (linear probe, zero-shot, retrieval, fine-tuning) and their prompt sets."""
