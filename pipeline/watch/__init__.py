"""`serve`: a read-only, self-refreshing web page of the training runs under a folder.

    runs.py    find the run folders under DIR, their status rows, path checks
    charts.py  the run's chart and summary, drawn by `summarize` into RUN/summary (cached)
    page.py    HTML from status rows (pure: no files, no clock)
    server.py  the HTTP part (http.server, one thread per request)
"""
