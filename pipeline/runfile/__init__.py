"""`yolo-pipeline run`: one pipeline file from raw download to trained, summarized model."""
