"""Node processes, link proxies and targets: everything that starts, stops and cuts a cluster."""
