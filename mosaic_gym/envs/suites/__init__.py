"""Other people's benchmarks as mosaic environments: ``mosaic/AgentDojo-v0``, ``mosaic/BFCL-v0``.

Each suite is an optional extra (``agentdojo``, ``bfcl``); nothing here imports it until an
env is made, so ``import mosaic_gym`` stays light. ``base`` holds what both envs share (the
MOSAIC text interface, the record shape, the fail-closed judge); each suite module holds
only how its tools run and how its own checker is called.
"""
