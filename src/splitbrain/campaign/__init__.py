"""Campaigns: many runs — seeds × fault mixes × workloads × any other axis — as Dask tasks,
gathered in one directory with rates per configuration and one exit code for CI.

    matrix.py     the matrix (TOML or flags) and the RunSpec of each run (pure)
    task.py       one run on a Dask worker: launch `splitbrain <mode>`, read its outcome,
                  bring its files back
    driver.py     the Dask side: a LocalCluster or an existing scheduler; records each outcome
    directory.py  the campaign directory: plan.json, outcomes.jsonl, campaign.json/html
    outcome.py    RunOutcome and the campaign's exit code
    summary.py    campaign.json: rates per configuration with Wilson intervals (pure)
    trends.py     per configuration across nights; what got worse (pure)
    pages.py      campaign.html and the campaigns page of `splitbrain serve`
    ci.py         JUnit XML and the markdown summary
    command.py    `splitbrain campaign`
"""
