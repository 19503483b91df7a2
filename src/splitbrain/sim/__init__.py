"""`splitbrain sim`: the bundled Raft, unchanged, on a simulated operating system.

See docs/architecture.md ("Simulation"): loop.py, net.py, disk.py and world.py are the
simulated OS; cluster.py runs the nodes and link proxies on it; simulate.py, swarm.py,
explore.py, shrink.py and invariants.py make a tool of it; command.py is the CLI.
"""
