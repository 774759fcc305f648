"""Everything Ultralytics-only: the offline environment (env), our worker process that runs
the engine with callbacks (worker), and the train backend that launches and reads it
(backend). Nothing here imports torch at module level except worker.
"""
