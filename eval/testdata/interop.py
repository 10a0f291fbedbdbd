#!/usr/bin/python3
"""Live interop check for package eval (run by TestInteropSklearnScipy, not by hand).

Reads {"sets": [{"scores": [...], "labels": [...]}, ...]} on stdin and writes, for each set,
what scikit-learn and scipy return: roc_auc, average_precision, mw_statistic, mw_p_value
(mannwhitneyu(anomaly, normal, alternative='greater', method='auto')) and the Youden point of
roc_curve(drop_intermediate=False).
"""
import json
import sys

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

out = []
for s in json.load(sys.stdin)["sets"]:
    y = np.asarray(s["labels"], int)
    x = np.asarray(s["scores"], float)
    mw = mannwhitneyu(x[y == 1], x[y == 0], alternative="greater", method="auto")
    fpr, tpr, thr = roc_curve(y, x, drop_intermediate=False)
    j = int(np.argmax(tpr - fpr))
    out.append({
        "roc_auc": float(roc_auc_score(y, x)),
        "average_precision": float(average_precision_score(y, x)),
        "mw_statistic": float(mw.statistic),
        "mw_p_value": float(mw.pvalue),
        "youden_threshold": float(thr[j]),
        "sensitivity": float(tpr[j]),
        "specificity": float(1 - fpr[j]),
    })
json.dump(out, sys.stdout)
