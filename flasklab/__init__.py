"""flasklab: one ready Flask server per student, rendered as cloud-init user-data."""
