"""Analyses of finished item -> category runs, as functions.

One module per analysis, each reading a run folder's own files
(``metrics.json``, ``per_item_seed<s>.npz``) through :mod:`hgraph.analysis.runs`:

* :mod:`~hgraph.analysis.seen_bias`: where zero-shot mistakes land (categories
  with training items or not);
* :mod:`~hgraph.analysis.zero_shot_misses`: where in the tree they land
  (parent, child, sibling, ...);
* :mod:`~hgraph.analysis.calibration`: test P@1 on seen and zero-shot
  categories against the calibration handicap;
* :mod:`~hgraph.analysis.context_features`: the untrained cosine baseline with
  and without the parent's text on the category side.

The command is ``python pipelines/analyse.py <analysis> ...``.  Nothing in
:mod:`hgraph` imports this package (only ``pipelines/`` and ``tests/``).
"""
