"""docs/images/report_fid.png: the report run's scores per epoch, from report200/evaluation.csv."""
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
ep = [int(r["epoch"]) for r in rows]
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
a.plot(ep, [float(r["fid"]) for r in rows], marker=".")
a.set_yscale("log"); a.set_xlabel("epoch"); a.set_ylabel("FID (2,000 samples; lower is better)"); a.grid(alpha=.3)
b.plot(ep, [100 * float(r["confident"]) for r in rows], marker=".", color="C1")
b.set_xlabel("epoch"); b.set_ylabel("confident share (%)"); b.grid(alpha=.3)
fig.suptitle("The report's recipe, run toward 200 epochs (report200/evaluation.csv)", fontsize=10)
fig.tight_layout(); fig.savefig(sys.argv[2])
