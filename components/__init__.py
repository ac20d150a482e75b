"""Pulumi ComponentResources of flasklab, one per module."""
