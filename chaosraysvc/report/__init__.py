"""Reports of resilience runs: a journal and its traffic log, drawn for people and machines.

The flow, one module per step::

    load.py      read and check the journal, find and read the traffic log -> RunInput
    faults.py    the faults and their recovery milestones (action outputs, traffic marks)
    verdict.py   the outcome and the facts in words
    figures.py   everything a report shows, as plain data (the JSON format)
    chart.py     the traffic timeline with every milestone (matplotlib, SVG or PNG)
    render.py    HTML (self-contained, printable), Markdown or JSON from templates/
    cli.py       `chaosraysvc report JOURNAL... [--traffic FILE] [-o OUT] [--format ...]`

Traffic statistics are those of `chaosraysvc.traffic.stats`; nothing is recomputed here.
"""
