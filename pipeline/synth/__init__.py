"""Synthetic datasets in the real download layouts (demo, tests, benchmarks), deterministic
for a seed: imagenet (Kaggle CLS-LOC tree), coco (instances JSON + images), voc (devkit
year folder, flat export; the one VOC XML writer), yolo (Roboflow / Ultralytics / darknet
exports); draw (the shapes every generator draws).
"""
