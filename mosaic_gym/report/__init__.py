"""Reports on finished runs: the HTML viewer (``mosaic view``) and run comparison
(``mosaic compare``), with every rate given as counts and a 95 % interval.

An application layer: it reads run folders written by ``mosaic eval`` and the judge's metric
definitions, and nothing below it imports it.
"""

from mosaic_gym.report.breakdown import breakdown, rates
from mosaic_gym.report.runs import Run, load_run
from mosaic_gym.report.stats import Rate, newcombe_difference, paired, wilson

__all__ = ["Rate", "Run", "breakdown", "load_run", "newcombe_difference", "paired", "rates",
           "wilson"]
