#!/usr/bin/python3
"""sklearn_tsne: scikit-learn's exact t-SNE as the reference of src/metrics/tsne.ts.

Needs Debian's scikit-learn for /usr/bin/python3 (``apt-get install -y python3-sklearn``).
Reads one JSON job on stdin and writes one JSON object on stdout::

    {"x": [[...], ...], "perplexity": 30,
     "init": [[y0, y1], ...],            optional: run TSNE(method="exact") from here
     "early_exaggeration": 4, "learning_rate": 100, "n_iter": 1000,
     "at": [[y0, y1], ...],              optional: KL and gradient at this embedding
     "steps": [1, 5, ...]}               optional, with init: the embedding after that many
                                         steps of the first (exaggerated, momentum 0.5) phase

Outputs ``P`` (N, N) (sklearn's ``_joint_probabilities`` of the squared Euclidean distances, as
``TSNE.fit`` computes them), and with ``init`` the final ``embedding`` and ``kl`` (sklearn's
``kl_divergence_``: the KL at the last iteration's start) and ``kl_final`` (``_kl_divergence`` of
the returned embedding); with ``at`` the ``kl_at`` and ``grad_at`` of ``_kl_divergence``; with
``steps`` the ``after_steps`` embeddings of sklearn's ``_gradient_descent`` (the function
``TSNE._tsne`` runs each phase with). ``init`` may also be a list of starts (then ``kl_final``
is a list, one per start, and ``embedding`` is the first one's).
"""

import json
import sys

import numpy as np
from scipy.spatial.distance import squareform
from sklearn.manifold import TSNE
from sklearn.manifold._t_sne import _gradient_descent, _joint_probabilities, _kl_divergence
from sklearn.metrics import pairwise_distances


def main():
    job = json.load(sys.stdin)
    x = np.asarray(job["x"], dtype=np.float64)
    n = x.shape[0]
    perp = float(job.get("perplexity", 30))
    dist = pairwise_distances(x, metric="euclidean", squared=True)
    p = _joint_probabilities(dist, perp, 0)  # condensed
    out = {"P": squareform(p).tolist()}
    if "at" in job:
        y = np.asarray(job["at"], dtype=np.float64)
        kl, grad = _kl_divergence(y.ravel().copy(), p, 1, n, y.shape[1])
        out["kl_at"] = float(kl)
        out["grad_at"] = grad.reshape(y.shape).tolist()
    if "init" in job:
        inits = np.asarray(job["init"], dtype=np.float64)
        many = inits.ndim == 3
        exag = float(job.get("early_exaggeration", 4))
        lr = float(job.get("learning_rate", 100))
        n_iter = int(job.get("n_iter", 1000))
        kls = []
        for k, init in enumerate(inits if many else [inits]):
            # No early stop: min_grad_norm 0 and more patience than iterations, so both sides
            # run exactly n_iter steps.
            t = TSNE(n_components=init.shape[1], perplexity=perp, method="exact", init=init,
                     early_exaggeration=exag, learning_rate=lr, n_iter=n_iter,
                     min_grad_norm=0.0, n_iter_without_progress=n_iter + 1)
            y = t.fit_transform(x)
            kls.append(float(_kl_divergence(y.ravel().copy(), p, 1, n, y.shape[1])[0]))
            if k == 0:
                out["embedding"] = y.tolist()
                out["kl"] = float(t.kl_divergence_)
                out["n_iter"] = int(t.n_iter_)
        out["kl_final"] = kls if many else kls[0]
        first = inits[0] if many else inits
        after = []
        for k in job.get("steps", []):
            y, _, _ = _gradient_descent(_kl_divergence, first.ravel().copy(), it=0, n_iter=int(k),
                                        momentum=0.5, learning_rate=lr, args=[p * exag, 1, n, first.shape[1]],
                                        kwargs={}, n_iter_check=50, min_grad_norm=0.0,
                                        n_iter_without_progress=10**9)
            after.append(y.reshape(first.shape).tolist())
        out["after_steps"] = after
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
