"""Training code: the tiny offline model, SFT, rollout collection, preference pairs, trainers.

Modules here import torch, transformers and TRL (the ``train`` extra); ``import mosaic_gym``
never imports this package.
"""
