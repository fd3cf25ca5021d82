"""Reproduction reports: read a sweep's runs, aggregate seeds (IQM, bootstrap CIs), compare experiments (probability
of improvement, performance profiles) and compare to references."""

from qlearn.reports.reference import Reference, load_references, matching
from qlearn.reports.report import Summary, summarize, write_report
from qlearn.reports.stats import (iqm, mean, performance_profile, probability_of_improvement,
                                  probability_of_improvement_ci, stratified_bootstrap_ci)
from qlearn.reports.sweep import Run, group_runs, read_run, read_sweep

__all__ = [
    "Reference", "Run", "Summary", "group_runs", "iqm", "load_references", "matching", "mean", "performance_profile",
    "probability_of_improvement", "probability_of_improvement_ci", "read_run", "read_sweep", "stratified_bootstrap_ci",
    "summarize", "write_report",
]
