"""Zero-shot evaluation (paper Tables 4 and 5) and segment-everything; pycocotools / lvis do the metrics."""
