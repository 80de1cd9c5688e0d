"""Bridges to the tools this field already uses: Inspect AI (``inspect_ai``) and OpenEnv
(``openenv``). Each module needs its optional extra and says so with the ``pip install``
line when it is missing; nothing in the gym imports them.
"""
