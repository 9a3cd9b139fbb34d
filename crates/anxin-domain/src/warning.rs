//! Warnings to people: levels, categories, the workflow, areas and CAP 1.2 mapping.
