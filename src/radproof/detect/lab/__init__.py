"""The detector's laboratory: what building and measuring the detector needs, and judging an image does not.

- :mod:`~radproof.detect.lab.manifest`: labelled data sets (the manifest CSV);
- :mod:`~radproof.detect.lab.features`: cue values and network logits of many images;
- :mod:`~radproof.detect.lab.evaluate`: the protocol folds (leave one generator out, leave one set
  out) and the perturbation suite, with :mod:`~radproof.detect.lab.metrics`;
  :mod:`~radproof.detect.lab.report` renders ``radproof evaluate``;
- :mod:`~radproof.detect.lab.perturbations` and :mod:`~radproof.detect.lab.processing`: everyday
  processing, forgers' moves and hospital post-processing applied to images;
- :mod:`~radproof.detect.lab.training`: rebuilding the shipped detector; :mod:`~radproof.detect.lab.train`
  trains its network (torch, the ``train`` extra);
- :mod:`~radproof.detect.lab.adapt`: commissioning at a site (``radproof adapt``);
- :mod:`~radproof.detect.lab.studies`: measurements behind docs/detector.md.

Inference (:mod:`radproof.detect`) never imports this package (an import-linter contract).
"""
