"""``Features`` as a scikit-learn transformer, for training pipelines."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from bggscore.features import Features


class FeatureBuilder(Features, TransformerMixin, BaseEstimator):
    """Turns games_features rows into a sparse numeric matrix (see ``Features``).

    ``chain_inputs`` names columns produced earlier in the scoring chain (e.g.
    ``predicted_complexity``); they are used as-is, with missing values imputed.
    """


# registered before this module existed, pipelines name the class bggscore.features.FeatureBuilder;
# that module hands it out lazily, so old and new artifacts load the same way
FeatureBuilder.__module__ = "bggscore.features"
