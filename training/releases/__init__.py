"""Readers of datasets' releases as downloaded, shared by the training readers and the benchmarks.

- :mod:`.plain_pickle`: pickles read with a restricted unpickler that builds plain data only, never code;
- :mod:`.refer`: RefCOCO / RefCOCO+ / RefCOCOg as lichengunc/refer releases them (``refs(<splitBy>).p`` +
  ``instances.json``);
- :mod:`.ai2d`: AI2D's folders (``questions/``, ``images/``, ``annotations/``) and its ``ai2d_test_ids.csv``.
"""
