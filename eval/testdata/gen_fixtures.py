#!/usr/bin/python3
"""Golden fixtures for package eval: scikit-learn and scipy on several score sets.

Run from the repository root with Debian's interpreter (sklearn 1.2, scipy 1.10):

    /usr/bin/python3 eval/testdata/gen_fixtures.py

It writes eval/testdata/golden.json. Every set lists the scores and 0/1 labels (anomaly = 1)
in the order they are given to the metrics (deliberately not sorted by label), and what
sklearn.metrics (roc_auc_score, roc_curve with and without drop_intermediate,
average_precision_score) and scipy.stats.mannwhitneyu(anomaly, normal,
alternative='greater', method='auto') return for them, plus the method 'auto' chose.
"""
import json
import os

import numpy as np
import scipy
import sklearn
from scipy.stats import mannwhitneyu
from scipy.stats._mannwhitneyu import _mwu_choose_method
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def shuffled(rng, anomaly, normal):
    scores = np.concatenate([np.asarray(anomaly, float), np.asarray(normal, float)])
    labels = np.concatenate([np.ones(len(anomaly), int), np.zeros(len(normal), int)])
    perm = rng.permutation(len(scores))
    return scores[perm], labels[perm]


def build_sets():
    rng = np.random.RandomState(20261128)
    sets = {}

    def add(name, anomaly, normal):
        sets[name] = shuffled(rng, anomaly, normal)

    # Many ties across and within classes, both samples > 8: normal approximation.
    add("ties_rounded", np.round(rng.normal(0.6, 0.3, 30), 1), np.round(rng.normal(0.4, 0.3, 40), 1))
    # Every score equal: AUC 0.5, AP = prevalence, MWU standard deviation 0 so p = 1.
    add("all_equal", np.full(5, 1.25), np.full(7, 1.25))
    # Small samples without ties: exact null distribution.
    add("small_exact_5v6", rng.normal(1.0, 1.0, 5), rng.normal(0.0, 1.0, 6))
    add("small_exact_8v8", rng.normal(0.8, 1.0, 8), rng.normal(0.0, 1.0, 8))
    # scipy's 'auto' goes exact whenever one sample has at most 8 values and there are no ties.
    add("small_exact_3v20", rng.normal(1.5, 1.0, 3), rng.normal(0.0, 1.0, 20))
    add("exact_8v60", rng.normal(1.0, 1.0, 8), rng.normal(0.0, 1.0, 60))
    add("single_anomaly", [2.5], rng.normal(0.0, 1.0, 10))
    # Both samples exactly 9 without ties: asymptotic.
    add("asymptotic_9v9", rng.normal(0.7, 1.0, 9), rng.normal(0.0, 1.0, 9))
    # Small samples with ties: asymptotic with tie correction.
    add("small_ties_6v7", [1, 2, 2, 3, 5, 5], [0, 1, 1, 2, 3, 4, 4])
    # Larger samples with heavy ties (integer scores 0..20).
    add("large_ties", rng.binomial(20, 0.55, 200), rng.binomial(20, 0.45, 300))
    # Complete separation: p ~ 1e-11 and ~ 1e-15, where Erfc's precision matters.
    add("separated_30v30", rng.uniform(10, 11, 30), rng.uniform(0, 1, 30))
    add("separated_40v40", rng.uniform(10, 11, 40), rng.uniform(0, 1, 40))
    # Anomalies scored lower than normals: AUC < 0.5, p near 1.
    add("inverted", rng.normal(-1.0, 1.0, 25), rng.normal(0.0, 1.0, 20))
    # Continuous scores, moderate size, no ties.
    add("continuous_50v70", rng.gamma(2.0, 1.3, 50), rng.gamma(2.0, 1.0, 70))
    return sets


def main():
    out = {
        "generator": "eval/testdata/gen_fixtures.py",
        "sklearn": sklearn.__version__,
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "sets": [],
        "quantiles": [],
    }
    # numpy.quantile's default linear interpolation, used for the bootstrap bounds.
    qrng = np.random.RandomState(7)
    for x in ([3.0], [1.0, 2.0], qrng.normal(size=17), qrng.uniform(size=400)):
        x = np.asarray(x, float)
        q = [0.0, 0.025, 0.1, 0.5, 0.9, 0.975, 1.0]
        out["quantiles"].append({"x": x.tolist(), "q": q, "v": [float(np.quantile(x, v)) for v in q]})
    for name, (scores, labels) in build_sets().items():
        anomaly, normal = scores[labels == 1], scores[labels == 0]
        mw = mannwhitneyu(anomaly, normal, alternative="greater", method="auto")
        method = _mwu_choose_method(len(anomaly), len(normal), np.concatenate([anomaly, normal]), "auto")
        fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
        fpr_d, tpr_d, thr_d = roc_curve(labels, scores)
        j = int(np.argmax(tpr - fpr))
        out["sets"].append({
            "name": name,
            "scores": [float(s) for s in scores],
            "labels": [int(v) for v in labels],
            "roc_auc": float(roc_auc_score(labels, scores)),
            "average_precision": float(average_precision_score(labels, scores)),
            "mw_statistic": float(mw.statistic),
            "mw_p_value": float(mw.pvalue),
            "mw_method": method,
            "anomaly_mean": float(anomaly.mean()),
            "normal_mean": float(normal.mean()),
            "roc_full": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()},
            "roc_dropped": {"fpr": fpr_d.tolist(), "tpr": tpr_d.tolist(), "thresholds": thr_d.tolist()},
            "youden_threshold": float(thr[j]),
            "sensitivity": float(tpr[j]),
            "specificity": float(1 - fpr[j]),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
