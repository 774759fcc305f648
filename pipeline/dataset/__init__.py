"""A dataset folder and everything that reads it.

folder (what a dataset folder is: open_dataset, its splits and lists), foreign (other
tools' datasets: an Ultralytics/Roboflow data.yaml, a darknet .data, a convert ROOT),
manifest, labels (one object row to a YOLO line; where a label lives), label_lines (the
label-line rules), datafiles (.names, .data, list files, data.yaml), checks, stats (+
stats_chart), subset and class_choice.
"""
