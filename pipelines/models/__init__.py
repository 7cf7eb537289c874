"""Model files: the format a trained model travels in (:mod:`~pipelines.models.file`).

Below every part that reads or writes one: replay (``--model``, ``--save-model``), the
service (``[model] init``) and training (:mod:`pipelines.train`).
"""
