"""yolo-pipeline: raw detection downloads -> YOLO labels -> configs -> training -> reports."""

__version__ = "0.1.0"
