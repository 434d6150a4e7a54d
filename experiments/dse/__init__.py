"""Design-space exploration (`flexiq dse`): sweep NPU configurations x models x ratios.

``space``: the swept points (grid, random sampling, TOML); ``job``: one (configuration,
model) evaluation in a worker (timing-only runs); ``backends``: where jobs run (a local
process pool or Ray); ``table``: the resumable result table; ``pareto``: the latency /
area plot; ``runner``: ties them together. docs/dse.md describes the whole.
"""
