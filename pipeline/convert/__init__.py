"""The convert stage: annotation downloads to YOLO labels beside the images.

engine (jobs, the rerun cache, the manifest write), pool (one process pool), split_checks
(what a split's file names and overlaps tell), sources/ (one module per download layout:
ImageNet Kaggle, COCO JSON, Pascal VOC).
"""
