# Full-pool image<->text retrieval on a 5xN set (datasets.md section 2.4): relevance = same class,
# P@K and Hit@K for K in 1/5/10/100, both directions.
task = dict(type="retrieval", split="test", ks=(1, 5, 10, 100), text="impression_findings", n_resamples=1000)
seeds = [0]
