"""Face consistency: dlib face descriptors, distances and pass/fail (consistency.py) and
the report files of a scored sheet (report.py). Works offline, without a backend."""
