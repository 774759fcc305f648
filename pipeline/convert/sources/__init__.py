"""Annotation sources: each turns one download layout into conversion jobs."""
