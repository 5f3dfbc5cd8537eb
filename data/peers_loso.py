#!/usr/bin/env python3
"""Leave-one-source-out for the peers, on the same files as
`slant train --config data/default.toml --leave-one-out`, so that the
model card can say how slant does on a domain it has not seen against what
users would otherwise reach for. Not part of the build or the tests: it
needs the peers' Python environment (../shared/bench/README.md).

usage: ~/.venvs/peers/bin/python data/peers_loso.py data/default.toml [HEAD ...]

For each head and each of its training files, a TF-IDF(1-2) + LogisticRegression peer trained
on the head's other training files (label maps and skip_labels applied, as
slant reads them), C chosen on the head's other dev files (mean macro-F1),
measured on the held-out file's dev split. Two variants: plain pooling, and
every source weighted equally (as slant's balance_sources). VADER too for
sentiment. One JSON line per (head, held out, peer)."""
import json, os, sys, tomllib
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

cfg_path = sys.argv[1]
cfg = tomllib.load(open(cfg_path, "rb"))
root = os.path.normpath(os.path.join(os.path.dirname(cfg_path), cfg["data_root"]))
only = set(sys.argv[2:])

def load(entry, labels):
    m = entry.get("label_map", {}); skip = set(entry.get("skip_labels", []))
    x, y = [], []
    for line in open(os.path.join(root, entry["path"]), encoding="utf-8"):
        r = json.loads(line)
        if r["label"] in skip: continue
        l = m.get(r["label"], r["label"])
        if l not in labels: continue
        x.append(r["text"]); y.append(l)
    return x, y

def dev_for(train_path):
    return train_path.replace("/train.jsonl", "/dev.jsonl")

for head in cfg["heads"]:
    if only and head["name"] not in only: continue
    labels = head["labels"]
    trains = head["train"]
    devs = head["dev"]
    for i, held in enumerate(trains):
        hx, hy = load(dict(held, path=dev_for(held["path"])), labels)
        if len(set(hy)) < 2: continue  # all-one-label files: not a macro-F1
        rest = [t for j, t in enumerate(trains) if j != i]
        rest_dev = [d for d in devs if d["path"].split("/")[0] != held["path"].split("/")[0]]
        parts = [load(t, labels) for t in rest]
        x = sum((p[0] for p in parts), []); y = sum((p[1] for p in parts), [])
        mean = len(y) / len(parts)
        balanced = np.concatenate([np.full(len(p[1]), mean / max(1, len(p[1]))) for p in parts])
        dsets = [load(d, labels) for d in rest_dev]
        dsets = [d for d in dsets if len(set(d[1])) >= 2]
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        X = vec.fit_transform(x)
        Xd = [vec.transform(d[0]) for d in dsets]
        Xh = vec.transform(hx)
        for variant, w in (("pooled", None), ("balanced_sources", balanced)):
            best = None
            for C in (0.25, 0.5, 1, 2, 4, 8, 16, 32):
                m = LogisticRegression(C=C, max_iter=2000).fit(X, y, sample_weight=w)
                s = np.mean([f1_score(d[1], m.predict(xd), average="macro") for d, xd in zip(dsets, Xd)]) if dsets else 0
                if best is None or s > best[0]: best = (s, C, m)
            f1 = f1_score(hy, best[2].predict(Xh), average="macro")
            print(json.dumps({"head": head["name"], "held_out": held["path"].split("/")[0], "n": len(hy),
                              "peer": f"sklearn-tfidf12-logreg-{variant}(C={best[1]})", "macro_f1": round(f1, 4)}), flush=True)
        if head["name"] == "sentiment":
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
            a = SentimentIntensityAnalyzer()
            c = [a.polarity_scores(s)["compound"] for s in hx]
            pred = ["positive" if v >= 0.05 else "negative" if v <= -0.05 else "neutral" for v in c]
            print(json.dumps({"head": "sentiment", "held_out": held["path"].split("/")[0], "n": len(hy),
                              "peer": "vader", "macro_f1": round(f1_score(hy, pred, average="macro"), 4)}), flush=True)
