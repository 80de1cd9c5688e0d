"""The worked examples of ``mosaic_gym/testing/GUIDE.md``, as a user would write them.

Each file imports only the public API (``mosaic_gym.testing.*``, the plugin's fixtures). CI runs
this folder as its own pytest session (``tests/run.sh``); point it at your own scenarios with
``pytest --mosaic-scenarios DIR mosaic_gym/testing/examples``.
"""
