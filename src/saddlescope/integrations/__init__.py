"""Adapters that put a :class:`~saddlescope.CurvatureMonitor` into training frameworks.

Each is an optional extra, imported on its own so that saddlescope needs neither framework:

* :mod:`saddlescope.integrations.lightning` — ``CurvatureCallback``, a Lightning ``Callback``
  (``pip install "saddlescope[lightning]"``);
* :mod:`saddlescope.integrations.transformers` — ``CurvatureTrainerCallback``, a
  ``transformers.TrainerCallback`` (``pip install "saddlescope[transformers]"``).
"""
