"""A failure-probability study on a small network built from numpy (docs/python.md): how the
hidden layer's firing, the synaptic work and the energy change when every synapse fails
independently with probability r (quantal release). Run: PYTHONPATH=build/python /usr/bin/python3 examples/python/failure_study.py"""
import numpy as np
import quantal

rng = np.random.default_rng(0)
b = quantal.NetworkBuilder()
b.add_population("input", 100, quantal.BernoulliSource(0.1))
b.add_population("hidden", 50, quantal.LIF(threshold=1.0, v0=0.0, tau_ticks=10.0))
b.connect("input", "hidden", quantal.Dense(rng.uniform(0.0, 0.05, (50, 100))))
net = b.build()
print("ratio  hidden spikes/neuron/tick  transmitted/sample  energy pJ/sample")
for r in (0.0, 0.25, 0.5, 0.75, 0.9):
    res = net.run(ticks=100, samples=20, seed=1, mask=r, threads=2)
    rate = res.ledger.populations["spikes"][:, 1].mean() / 50 / 100
    print(f"{r:5.2f}  {rate:25.4f}  {res.ledger.projections['transmitted'].mean():18.1f}  {res.ledger.snn_pj.mean():16.1f}")
