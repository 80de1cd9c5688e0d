"""An Inspect eval of the scenario library with Inspect's offline mock model.

``python benchmarks/inspect_mock_eval.py [SPLIT]`` (default ``all``: every variant, attack
and seed 0). The mock refuses every task, with token usage on each output so Inspect does
not try to fetch a tokenizer; the printed means are therefore the refusal baseline's,
computed by mosaic's judge and reported through Inspect's metrics. Needs the ``inspect`` extra.
"""

from __future__ import annotations

import sys
import time

from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from mosaic_gym.bridges.inspect_ai import mosaic_task

REFUSAL = ('<think>This could be unsafe.</think>\n<tool_call>{"name": "refusal_tool", '
           '"arguments": {"reason": "not safe"}}</tool_call>')


def refuse(input, tools, tool_choice, config) -> ModelOutput:  # noqa: A002
    output = ModelOutput.from_content(model="mockllm", content=REFUSAL)
    output.usage = ModelUsage(input_tokens=500, output_tokens=30, total_tokens=530)
    return output


def main(split: str = "all") -> None:
    start = time.perf_counter()
    [log] = inspect_eval(mosaic_task(split=split, attack="all"),
                         model=get_model("mockllm/model", custom_outputs=refuse),
                         log_dir="runs/inspect-logs", display="none")
    seconds = time.perf_counter() - start
    print(f"status {log.status}; {len(log.samples or [])} samples in {seconds:.1f} s; "
          f"log {log.location}")
    print(f"{'score':<10} {'mean':>7} {'stderr':>7}")
    for score in log.results.scores:
        print(f"{score.name:<10} {score.metrics['mean'].value:7.3f} "
              f"{score.metrics['stderr'].value:7.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
