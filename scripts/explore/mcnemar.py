"""Paired comparison on the test split: a shipped model's predictions against the issue's baseline.

    npx tsx scripts/explore/test-predictions.ts sentiment > /tmp/sentiment-test.json
    /usr/bin/python3 scripts/explore/mcnemar.py sentiment /tmp/sentiment-test.json

The baseline is scikit-learn TF-IDF (word 1-2 + char_wb 2-5, sublinear tf) + LogisticRegression(C=4),
fitted on the train split (i % 5 != 4). Prints both accuracies, the discordant pairs and the exact
two-sided McNemar p-value. Reporting only: nothing here selects a model.
"""

import json
import sys
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import binomtest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

model, path = sys.argv[1], sys.argv[2]
if model == "sentiment":
    df = pd.read_csv("../shared/datasets/sentiment/tweets_sentiment.csv.gz")
    X, y = df.SentimentText.fillna("").astype(str).values, df.Sentiment.values
else:
    df = pd.read_csv("../shared/datasets/spam/sms_spam.csv.gz")
    X, y = df.SMS.fillna("").astype(str).values, (df.Label.str.strip() == "spam").astype(int).values
i = np.arange(len(X))
test = i % 5 == 4
vs = [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
      TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)]
A = sparse.hstack([v.fit_transform(X[~test]) for v in vs]).tocsr()
B = sparse.hstack([v.transform(X[test]) for v in vs]).tocsr()
base = LogisticRegression(C=4, max_iter=2000).fit(A, y[~test]).predict(B)
ours = np.array(json.load(open(path))["predictions"])
truth = y[test]
assert len(ours) == len(truth)
a, b = ours == truth, base == truth
only_ours, only_base = int((a & ~b).sum()), int((~a & b).sum())
p = binomtest(only_ours, only_ours + only_base, 0.5).pvalue
print(f"{model}: shipped accuracy {a.mean():.4f}, baseline {b.mean():.4f}; right only by shipped {only_ours}, "
      f"only by baseline {only_base}; exact McNemar p = {p:.2g} ({len(truth)} test rows)")
