"""Pretraining objectives: each a module mapping PairOutputs to named, weighted losses."""
